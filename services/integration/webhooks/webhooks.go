// Package webhooks delivers platform events to the orgs' webhook endpoints,
// signed per the Standard Webhooks specification.
//
// An org registers a subscription (an event-sourced aggregate,
// "integration.subscription") for event types and contracts it is a party
// to. A projector on JSM_EVENTS (checkpoint in PostgreSQL, schema
// "webhooks") learns contracts and subscriptions and, in the same
// transaction, queues one delivery per matching event and subscription.
// A worker sends due deliveries, the earliest pending one of each
// aggregate first, retries failures with exponential backoff and jitter,
// and logs every attempt.
//
// Wiring, in the integration service:
//
//	subs, err := webhooks.New(ctx, webhooks.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger,
//		Keys: keys, Now: d.Now, AllowPrivateTargets: dev})
//	// Migrate once at start-up, Run in the background until shutdown,
//	// serve subs as the webhooks half of IntegrationService and merge
//	// subs.Procedures() into the service's auth.Policy.
//	err = subs.Migrate(ctx)
//	go subs.Run(ctx)
//
// AllowPrivateTargets lets endpoints on loopback and private addresses
// through; tests and `jsm up` (a developer's machine) set it, production
// leaves it off.
package webhooks

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"reflect"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/integration/registration"
	"github.com/jsmplatform/jsm/services/integration/secret"
	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"

	// The payloads carry every area's events as JSON: their types must be
	// known to this binary, whichever services run beside it.
	_ "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	_ "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	_ "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	_ "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	_ "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// Schema is the PostgreSQL schema of the webhooks half.
const Schema = "webhooks"

// AggregateType is the subscription aggregate's subject part.
const AggregateType = "integration.subscription"

// Source is the CloudEvents source of subscription events.
const Source = registration.Source

// Permissions of the webhooks procedures.
const (
	PermWebhooks auth.Permission = "integration.webhooks"
	PermRead                     = registration.PermRead
)

// Deps are what the webhooks half needs from the service.
type Deps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Keys derive the subscriptions' signing secrets (required).
	Keys secret.Keys
	// Now is the clock of commands and deliveries; time.Now when nil.
	Now func() time.Time
	// HTTP sends the deliveries; when nil, a client that follows no
	// redirects and, unless AllowPrivateTargets, dials public addresses only.
	HTTP *http.Client
	// AllowPrivateTargets accepts endpoints on loopback and private
	// addresses (tests, a developer's `jsm up`).
	AllowPrivateTargets bool
	// ReadWait bounds how long a query waits for its min_position (default 5s).
	ReadWait time.Duration
	// Delivery tunes retries, timeouts and polling.
	Delivery Delivery
}

// Subscriptions implements the webhooks half of jsm.integration.v1.IntegrationService.
type Subscriptions struct {
	d         Deps
	runner    *es.Runner[domain.State, domain.Command]
	projector *projection.Projector
	contracts *known.Contracts
	worker    *worker
}

// Decider is the subscription aggregate as the es runner sees it: no
// contract, the owning org as both parties, so the trail shows an org its
// own subscriptions.
func Decider() es.Decider[domain.State, domain.Command] {
	return es.Pure(AggregateType, domain.Decide, domain.Evolve, func(s domain.State) (string, domain.OrgID, domain.OrgID) {
		return "", s.Org, s.Org
	})
}

// New builds the webhooks half; call Migrate once, then Run.
func New(ctx context.Context, d Deps) (*Subscriptions, error) {
	if d.Store == nil || d.Pool == nil {
		return nil, errors.New("webhooks: store and pool are required")
	}
	if reflect.ValueOf(d.Keys).IsZero() {
		return nil, errors.New("webhooks: secret keys are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("component", "webhooks")
	if d.Now == nil {
		d.Now = time.Now
	}
	now := d.Now
	d.Now = func() time.Time { return now().UTC().Truncate(time.Microsecond) } // PostgreSQL keeps microseconds
	if d.ReadWait == 0 {
		d.ReadWait = 5 * time.Second
	}
	if d.HTTP == nil {
		d.HTTP = newHTTPClient(d.AllowPrivateTargets)
	}
	s := &Subscriptions{d: d}
	s.worker = &worker{pool: d.Pool, keys: d.Keys, http: d.HTTP, now: d.Now, log: d.Logger, cfg: d.Delivery.withDefaults(), wake: make(chan struct{}, 1), jitter: equalJitter}
	runner, err := es.NewRunner(ctx, d.Store, Source, Decider(), es.WithClock(d.Now), es.WithLogger(d.Logger))
	if err != nil {
		return nil, err
	}
	s.runner = runner
	s.projector, err = projection.New(projection.Config{
		Name: "webhooks", Schema: Schema, Logger: d.Logger,
		// New deliveries go out at once, not at the next poll.
		Hooks: projection.Hooks{AfterCommit: func(uint64) error { s.worker.Wake(); return nil }},
	}, matcher{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	s.contracts = known.New(d.Pool, d.Store, s.projector, Schema, d.ReadWait)
	return s, nil
}

// Migrate creates the schema and the projector's checkpoint.
func (s *Subscriptions) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.d.Pool, Schema, Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run matches events to subscriptions and sends the deliveries until ctx
// ends; attempts in flight are finished and recorded first.
func (s *Subscriptions) Run(ctx context.Context) error {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  []svcmain.Runner{s.worker},
		Log:       s.d.Logger,
		Flush:     []svcmain.Flusher{s.runner},
	}.Run(ctx)
}

// Projector is the matcher's projector (status, rebuild).
func (s *Subscriptions) Projector() *projection.Projector { return s.projector }

// Procedures maps the webhooks procedures to their permissions.
func Procedures() map[string]auth.Permission {
	return map[string]auth.Permission{
		integrationv1connect.IntegrationServiceRegisterSubscriptionProcedure:     PermWebhooks,
		integrationv1connect.IntegrationServiceRotateSubscriptionSecretProcedure: PermWebhooks,
		integrationv1connect.IntegrationServiceDisableSubscriptionProcedure:      PermWebhooks,
		integrationv1connect.IntegrationServiceEnableSubscriptionProcedure:       PermWebhooks,
		integrationv1connect.IntegrationServiceRedeliverDeliveryProcedure:        PermWebhooks,
		integrationv1connect.IntegrationServiceReplayDeliveriesProcedure:         PermWebhooks,
		integrationv1connect.IntegrationServiceListSubscriptionsProcedure:        PermRead,
		integrationv1connect.IntegrationServiceListDeliveriesProcedure:           PermRead,
	}
}

// Procedures is the package's Procedures, for callers holding a *Subscriptions.
func (s *Subscriptions) Procedures() map[string]auth.Permission { return Procedures() }

func metaOf(e event.Event) domain.Meta { return es.MetaOf(e) }

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations are the schema's goose migrations.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}
