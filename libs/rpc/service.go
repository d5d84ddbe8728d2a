// Package rpc hosts JSM services: one HTTP listener serving every Connect
// API with the same interceptors, health endpoints and gRPC reflection.
package rpc

import (
	"context"
	"net/http"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
)

// Service is one area of the platform as the host sees it.
type Service interface {
	// Name is the area's short name, e.g. "contracts".
	Name() string
	// Migrate creates or updates the service's PostgreSQL schema.
	Migrate(ctx context.Context) error
	// Run runs the background work (projections, reactors, schedulers) until
	// ctx ends; it returns nil on a clean stop.
	Run(ctx context.Context) error
	// Handlers returns the Connect handlers, built with the host's options
	// (interceptors, limits).
	Handlers(opts ...connect.HandlerOption) []Handler
	// Policy names the permission of each procedure and the permissions of each role.
	Policy() auth.Policy
}

// Handler is a Connect service mounted at Path (e.g. "/jsm.contracts.v1.ContractService/").
type Handler struct {
	Path    string
	Service string // the protobuf service name, for reflection
	Handler http.Handler
}
