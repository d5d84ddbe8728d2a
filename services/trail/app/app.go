// Package app holds the trail's use cases: searching and replaying the log
// on behalf of an org, rebuilding an aggregate as of a point, signing
// checkpoints, proving inclusion and consistency, exporting an
// investigation and auditing the stored log against its tree.
package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// Errors the API maps to Connect codes.
var (
	// ErrNotFound: no such entry or aggregate, or one of another org's contracts.
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a request that cannot be answered as asked.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotYet: the trail has not reached what was asked yet (catching up or rebuilding).
	ErrNotYet = errors.New("the trail has not reached that point yet")
	// ErrDiverged: the stored tree no longer matches a signed checkpoint.
	ErrDiverged = errors.New("the log diverges from a signed checkpoint")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Aggregate rebuilds one aggregate type's state from its events, as its
// area's decider does, and shows it as a protobuf message.
type Aggregate func(events []event.Event) (proto.Message, error)

// Config are the use cases' dependencies.
type Config struct {
	Pool      *pgxpool.Pool
	Projector *projection.Projector
	Signer    *ledger.Signer
	// ReadWait bounds how long a query waits for its min_position.
	ReadWait time.Duration
	// Aggregates are the deciders GetAggregateAt knows, by aggregate type.
	Aggregates map[string]Aggregate
	Now        func() time.Time
	// SignerKeys are the pinned event signer keys, listed in every
	// export's signed manifest (nil: none pinned).
	SignerKeys *eventsig.Keys
}

// App is the trail's use cases.
type App struct {
	Config
}

// New checks the dependencies.
func New(c Config) (*App, error) {
	if c.Pool == nil || c.Projector == nil || c.Signer == nil {
		return nil, errors.New("trail app: pool, projector and signer are required")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return &App{Config: c}, nil
}

func (a *App) wait(ctx context.Context, pos uint64) error {
	return a.Projector.WaitFor(ctx, pos, a.ReadWait)
}

// EventJSON renders an event's body as protojson, after upcasting; it
// fails for a type this build does not link in.
func EventJSON(e event.Event) ([]byte, error) {
	m, err := e.Decode()
	if err != nil {
		return nil, err
	}
	return protojson.Marshal(m)
}
