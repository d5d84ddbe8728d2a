package es

import (
	"fmt"
	"net/url"

	"github.com/jsmplatform/jsm/libs/event"
)

// Request is what every command of a service needs besides its body: who
// gives it and the client's idempotency key, correlation and trace.
type Request struct {
	Actor event.Actor
	// ID is the client's idempotency key (request_id); optional.
	ID          string
	Correlation string
	TraceParent string
}

// CommandFor wraps body as a command on an aggregate. A client's key names
// its own requests: the same key from another org or user, or for another
// kind of command, is another request.
func CommandFor[C any](req Request, aggregateID string, body C) Command[C] {
	var id string
	if req.ID != "" {
		id = fmt.Sprintf("%s/%s/%T/%s", url.PathEscape(req.Actor.Org), url.PathEscape(req.Actor.User), body, url.PathEscape(req.ID))
	}
	return Command[C]{ID: id, AggregateID: aggregateID, Body: body, Actor: req.Actor, Correlation: req.Correlation, TraceParent: req.TraceParent}
}

// NewID is the id of something a request creates (an aggregate, or an
// item within one): derived from the request's key when it has one, so a
// retried request names the same thing; new otherwise.
func NewID(kind string, req Request) string {
	if req.ID == "" {
		return event.NewID()
	}
	return event.DeriveID(kind+"/"+req.Actor.Org+"/"+req.Actor.User+"/"+req.ID, 0)
}
