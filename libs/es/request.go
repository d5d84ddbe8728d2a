package es

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/url"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/decide"
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
	// Contracts, when not nil, are the only contracts the command may act
	// on (the caller is a source, registered for those).
	Contracts []string
}

// CommandFor wraps body as a command on an aggregate. A client's key names
// its own requests: the same key from another org or user, or for another
// kind of command, is another request.
func CommandFor[C any](req Request, aggregateID string, body C) Command[C] {
	var id string
	if req.ID != "" {
		id = fmt.Sprintf("%s/%s/%T/%s", url.PathEscape(req.Actor.Org), url.PathEscape(req.Actor.User), body, url.PathEscape(req.ID))
	}
	if len(id) > event.MaxRefLen {
		// The id travels as every event's causation: a long user name
		// escaped three times over must not push it past the bounds.
		sum := sha256.Sum256([]byte(id))
		id = "cmd-" + hex.EncodeToString(sum[:])
	}
	return Command[C]{ID: id, AggregateID: aggregateID, Body: body, Actor: req.Actor, Correlation: req.Correlation, TraceParent: req.TraceParent, Contracts: req.Contracts}
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

// MetaOf is what a decider's Evolve takes from an event's envelope.
func MetaOf(e event.Event) decide.Meta {
	return decide.Meta{Time: e.Time, Actor: decide.Actor{Org: decide.OrgID(e.Actor.Org), User: e.Actor.User}, Position: e.Position}
}

// ActorOf is who gives a request's command, as a decider sees it.
func ActorOf(req Request) decide.Actor {
	return decide.Actor{Org: decide.OrgID(req.Actor.Org), User: req.Actor.User}
}

// Pure is a Decider from an area's pure functions: Evolve takes the
// envelope's meta, Scope names the aggregate's contract and parties, and
// the zero S is the initial state.
func Pure[S, C any](aggregateType string, decideFn func(S, C) ([]proto.Message, error), evolve func(S, proto.Message, decide.Meta) S, scope func(S) (contract string, customer, provider decide.OrgID)) Decider[S, C] {
	return Decider[S, C]{
		AggregateType: aggregateType,
		Initial:       func() S { var s S; return s },
		Decide:        decideFn,
		Evolve:        func(s S, e event.Event, m proto.Message) S { return evolve(s, m, MetaOf(e)) },
		Scope: func(s S) (string, event.Parties) {
			contract, customer, provider := scope(s)
			return contract, event.Parties{Customer: string(customer), Provider: string(provider)}
		},
		StateVersion: 1,
	}
}
