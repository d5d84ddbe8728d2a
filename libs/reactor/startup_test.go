package reactor_test

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/reactor"
)

// A reactor started while NATS is down (a node restarting, a cluster
// still forming) waits for it instead of stopping its service, and
// consumes once it is back.
func TestAReactorStartedWhileNATSIsDownWaitsForIt(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cfg := natsx.EmbeddedConfig{StoreDir: t.TempDir(), Port: port}
	ns, err := natsx.RunEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := natsx.Connect(ns.ClientURL(), "test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	store, err := eventstore.Open(context.Background(), nc, eventstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	appendValues(t, store, "a", 1, 2)
	s := &seen{calls: map[int64]int{}, done: make(chan struct{}), want: 2}
	r, err := reactor.New(context.Background(), store, reactor.Config{Name: "patient", Subjects: []string{event.Subject("test.thing", ">")}}, s.handle(0))
	if err != nil {
		t.Fatal(err)
	}

	natsx.Shutdown(context.Background(), ns)
	run(t, r)
	select {
	case <-r.Running():
		t.Fatal("running without NATS")
	case <-s.done:
		t.Fatal("handled events without NATS")
	case <-time.After(1500 * time.Millisecond):
	}

	ns, err = natsx.RunEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { natsx.Shutdown(context.Background(), ns) })
	select {
	case <-s.done:
	case <-time.After(45 * time.Second):
		t.Fatal("the reactor did not consume once NATS was back")
	}
}
