// Package ingest turns the CloudEvents that an org's ITSM tools and
// scanners publish into platform commands.
//
// A source (an event-sourced aggregate, "integration.source") is one ITSM
// instance or scanner of an org, registered for contracts the org is a
// party to, with a shared secret derived from the service's master key.
// It publishes CloudEvents 1.0 over HTTP (POST
// /ingest/v1/sources/{source}/events, structured, binary or batch mode,
// authenticated by "Authorization: Bearer <secret>" or a Standard Webhooks
// signature made with the secret) or on NATS (jsm.ingest.<source>.>,
// captured by the stream JSM_INGEST and read by a durable consumer). Both
// transports take the same path: the source's mapping (package mapping)
// says what the event asks for, and the executor gives the matching
// commands to the incidents, patching and change advisory APIs, as the
// source (user "source:<id>" of the source's org, role "itsm-source").
//
// Nothing is lost and nothing is applied twice. The inbox
// (ingest.events) holds one row per source and CloudEvent id with its
// outcome: a resent event is answered from it. Every command carries a
// request id derived from the source, the CloudEvent id and the step, so
// a crash between a command and its row repeats the command harmlessly.
// An external reference (system + ticket id) names one platform object
// (ingest.refs), so later updates of a ticket update the same incident or
// change. Events that cannot be mapped or that a domain rule refuses are
// rejected with a reason (HTTP 4xx problem details; on NATS the message
// goes to the dead-letter subject jsm.dlq.ingest with the reason) and are
// listed by ListRejectedEvents; a transient failure (a service not
// reachable) is answered 503 over HTTP and retried on NATS.
package ingest

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
	"golang.org/x/sync/errgroup"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/reactor"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/contracts/known"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/registration"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

// Schema is the PostgreSQL schema of the ingest half.
const Schema = "ingest"

// AggregateType is the source aggregate's subject part.
const AggregateType = "integration.source"

// Source is the CloudEvents source of source events.
const Source = registration.Source

// Role is the role of the tokens ingest calls the platform with; the
// incidents, patching and change advisory policies grant it what a source
// may do.
const Role = auth.SourceRole

// Permissions of the ingest procedures.
const (
	PermSources auth.Permission = "integration.sources"
	PermRead                    = registration.PermRead
)

// Platform is where the commands of ingested events go and how ingest
// calls as a source there.
type Platform struct {
	// The base URLs of the incidents, patching and change advisory APIs
	// (one host serves them all under `jsm up`).
	Incidents, Patching, Changes string
	// Token mints a bearer token for p that the platform accepts.
	Token func(p auth.Principal) (string, error)
	// HTTP is the client of those calls (default http.DefaultClient).
	HTTP *http.Client
}

// Deps are what the ingest half needs from the service.
type Deps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// Keys derive the sources' secrets (required).
	Keys secret.Keys
	// Platform says where commands go; it is asked on each use, so a host
	// whose address is known only once it listens can fill it in late.
	Platform func() Platform
	// Now is the clock of commands and the inbox; time.Now when nil.
	Now func() time.Time
	// ReadWait bounds how long a query waits for its min_position (default 5s).
	ReadWait time.Duration
	// Limits of the HTTP endpoint (defaults in withDefaults).
	Limits Limits
	// NATSAuth, when set, answers the NATS server's auth callout for
	// sources and disconnects them when disabled or rotated.
	NATSAuth *NATSAuth
}

// Sources implements the ingest half of jsm.integration.v1.IntegrationService
// and serves the ingest endpoint.
type Sources struct {
	d         Deps
	runner    *es.Runner[domain.State, domain.Command]
	projector *projection.Projector
	contracts *known.Contracts
	exec      *executor
	consumer  *reactor.Reactor
	limiter   *limiter
}

// Decider is the source aggregate as the es runner sees it: no contract,
// the owning org as both parties.
func Decider() es.Decider[domain.State, domain.Command] {
	return es.Pure(AggregateType, domain.Decide, domain.Evolve, func(s domain.State) (string, domain.OrgID, domain.OrgID) {
		return "", s.Org, s.Org
	})
}

// New builds the ingest half; call Migrate once, then Run.
func New(ctx context.Context, d Deps) (*Sources, error) {
	if d.Store == nil || d.Pool == nil || d.Platform == nil {
		return nil, errors.New("ingest: store, pool and platform are required")
	}
	if reflect.ValueOf(d.Keys).IsZero() {
		return nil, errors.New("ingest: secret keys are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("component", "ingest")
	if d.Now == nil {
		d.Now = time.Now
	}
	now := d.Now
	d.Now = func() time.Time { return now().UTC().Truncate(time.Microsecond) } // PostgreSQL keeps microseconds
	if d.ReadWait == 0 {
		d.ReadWait = 5 * time.Second
	}
	d.Limits = d.Limits.withDefaults()
	s := &Sources{d: d, limiter: newLimiter(d.Limits.RatePerSource, d.Limits.Burst)}
	runner, err := es.NewRunner(ctx, d.Store, Source, Decider(), es.WithClock(d.Now), es.WithLogger(d.Logger))
	if err != nil {
		return nil, err
	}
	s.runner = runner
	s.projector, err = projection.New(projection.Config{Name: "ingest", Schema: Schema, Logger: d.Logger}, sourcesProjection{}, d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	s.contracts = known.New(d.Pool, d.Store, s.projector, Schema, d.ReadWait)
	s.exec = newExecutor(d.Pool, d.Platform, d.Logger)
	if err := ensureStream(ctx, d.Store); err != nil {
		return nil, err
	}
	s.consumer, err = reactor.NewMessages(ctx, d.Store, reactor.Config{
		Name: ConsumerName, Stream: Stream, Subjects: []string{SubjectPrefix + ">"}, Logger: d.Logger,
	}, s.receiveNATS)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Migrate creates the schema and the projector's checkpoint.
func (s *Sources) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.d.Pool, Schema, Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the sources read model up to date and consumes the NATS
// transport until ctx ends.
func (s *Sources) Run(ctx context.Context) error {
	if s.d.NATSAuth != nil {
		g, ctx := errgroup.WithContext(ctx)
		g.Go(func() error { return s.serveCallout(ctx) })
		g.Go(func() error { return s.background().Run(ctx) })
		return g.Wait()
	}
	return s.background().Run(ctx)
}

func (s *Sources) background() svcmain.Background {
	return svcmain.Background{
		Projector: s.projector,
		Reactors:  []svcmain.Runner{s.consumer},
		Log:       s.d.Logger,
		Flush:     []svcmain.Flusher{s.runner},
	}
}

// Projector is the sources projector (status, rebuild).
func (s *Sources) Projector() *projection.Projector { return s.projector }

// Procedures maps the ingest procedures to their permissions.
func Procedures() map[string]auth.Permission {
	return map[string]auth.Permission{
		integrationv1connect.IntegrationServiceRegisterSourceProcedure:     PermSources,
		integrationv1connect.IntegrationServiceRotateSourceSecretProcedure: PermSources,
		integrationv1connect.IntegrationServiceDisableSourceProcedure:      PermSources,
		integrationv1connect.IntegrationServiceEnableSourceProcedure:       PermSources,
		integrationv1connect.IntegrationServiceGetSourceProcedure:          PermRead,
		integrationv1connect.IntegrationServiceListSourcesProcedure:        PermRead,
		integrationv1connect.IntegrationServiceListIngestedEventsProcedure: PermRead,
		integrationv1connect.IntegrationServiceListRejectedEventsProcedure: PermRead,
	}
}

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
