package testkit

import (
	"context"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
)

// NATS is a real embedded JetStream server for one test.
type NATS struct {
	Server   *server.Server
	StoreDir string
	// Auth are the users' passwords and the callout key of a server made by
	// StartNATSAuth; nil for the open server of StartNATS.
	Auth *natsauth.Secrets
	t    testing.TB
}

// StartNATS runs an embedded JetStream server on a free port with a temp
// store; it stops when the test ends.
func StartNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{StoreDir: t.TempDir(), t: t}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

// StartNATSAuth is StartNATS with the users and permissions of natsauth's
// table and the auth callout on: a client must be one of the users (see
// ConnAs) or be let in by whoever answers the callout.
func StartNATSAuth(t testing.TB) *NATS {
	t.Helper()
	secrets, err := natsauth.NewSecrets()
	if err != nil {
		t.Fatalf("nats secrets: %v", err)
	}
	n := &NATS{StoreDir: t.TempDir(), Auth: &secrets, t: t}
	n.start()
	t.Cleanup(n.Stop)
	return n
}

func (n *NATS) start() {
	s, err := natsx.RunEmbedded(natsx.EmbeddedConfig{StoreDir: n.StoreDir, Port: -1, Auth: n.Auth})
	if err != nil {
		n.t.Fatalf("start nats: %v", err)
	}
	n.Server = s
}

// Restart stops the server and starts a new one on the same store (a new
// port): what a crash and restart of NATS looks like to the data.
func (n *NATS) Restart() {
	n.t.Helper()
	n.Stop()
	n.start()
}

// Stop shuts the server down (idempotent).
func (n *NATS) Stop() {
	if n.Server != nil {
		natsx.Shutdown(context.Background(), n.Server)
		n.Server = nil
	}
}

// URL is the client URL of the running server.
func (n *NATS) URL() string { return n.Server.ClientURL() }

// Credentials are the user's name and password on a StartNATSAuth server.
func (n *NATS) Credentials(user string) natsx.Credentials {
	if n.Auth == nil {
		return natsx.Credentials{}
	}
	return natsx.Credentials{User: user, Password: n.Auth.Passwords[user]}
}

// ConnAs opens a connection as user of natsauth's table (its password,
// its inbox prefix), closed at the end of the test.
func (n *NATS) ConnAs(user string) *nats.Conn {
	n.t.Helper()
	nc, err := natsx.Connect(n.URL(), "test-"+user, nil, n.Credentials(user).Options()...)
	if err != nil {
		n.t.Fatalf("connect nats as %s: %v", user, err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// StoreAs opens the JSM_EVENTS stream as user.
func (n *NATS) StoreAs(user string) *eventstore.Store {
	n.t.Helper()
	s, err := eventstore.Open(context.Background(), n.ConnAs(user), eventstore.Config{})
	if err != nil {
		n.t.Fatalf("open event store as %s: %v", user, err)
	}
	return s
}

// Conn opens a client connection closed at the end of the test; on a
// StartNATSAuth server it is the administrator's.
func (n *NATS) Conn() *nats.Conn {
	n.t.Helper()
	if n.Auth != nil {
		return n.ConnAs(natsauth.AdminUser)
	}
	nc, err := nats.Connect(n.URL())
	if err != nil {
		n.t.Fatalf("connect nats: %v", err)
	}
	n.t.Cleanup(nc.Close)
	return nc
}

// Store opens the JSM_EVENTS stream on a new connection.
func (n *NATS) Store() *eventstore.Store {
	n.t.Helper()
	s, err := eventstore.Open(context.Background(), n.Conn(), eventstore.Config{})
	if err != nil {
		n.t.Fatalf("open event store: %v", err)
	}
	return s
}
