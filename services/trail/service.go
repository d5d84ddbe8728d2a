// Package trail is the audit trail service: every event of the stream in
// an append-only, verifiable log (an RFC 6962 Merkle tree with signed
// checkpoints), searchable and replayable per org, with aggregates rebuilt
// as of any point, proofs and exports. Service wires it from explicit
// dependencies, so cmd/trail and tools/jsm build it the same way.
package trail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1/trailv1connect"
	"github.com/jsmplatform/jsm/services/trail/api"
	"github.com/jsmplatform/jsm/services/trail/app"
	"github.com/jsmplatform/jsm/services/trail/ledger"
	readmodel "github.com/jsmplatform/jsm/services/trail/projection"
)

// Deps are what the service needs from its host.
type Deps struct {
	Store  *eventstore.Store
	Pool   *pgxpool.Pool
	Logger *slog.Logger
	// SigningKey is the note signer key of the checkpoints
	// (PRIVATE+KEY+<origin>+...); its name is the log's origin. See
	// LoadOrCreateKey.
	SigningKey string
	// Origin names the log in its checkpoints (C2SP tlog-checkpoint: a
	// schema-less URL such as example.com/jsm/trail, unique to the
	// deployment); the signing key signs under that name. Empty: the key's
	// own name.
	Origin string
	// Witnesses are the C2SP tlog-witnesses the trail submits each new
	// checkpoint to; their cosignatures are kept and served.
	Witnesses []app.Witness
	// WitnessClient sends the add-checkpoint requests (default: a client
	// with a 30s timeout).
	WitnessClient *http.Client
	// CheckpointEvery signs a checkpoint after this many new entries
	// (default 1000) ...
	CheckpointEvery int64
	// ... or after CheckpointInterval when there are any (default 10s).
	CheckpointInterval time.Duration
	// Aggregates are the deciders GetAggregateAt uses (default Aggregates()).
	Aggregates map[string]app.Aggregate
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// ReadWait bounds how long a query waits for its min_position (default 5s).
	ReadWait time.Duration
	// BatchSize and CatchUpBatchSize tune the projector (defaults 1000 and 5000).
	BatchSize, CatchUpBatchSize int
	// SignerKeys are the pinned public keys of the services' event
	// signing keys ($JSM_TRAIL_SIGNER_KEYS). With keys, an event is logged
	// only when the key of its own area signed it, else it is quarantined;
	// with none, every event is logged unattributed (development, tests).
	SignerKeys *eventsig.Keys
	// SignaturesFrom is the first stream position whose events must be
	// signed ($JSM_TRAIL_SIGNATURES_FROM): earlier ones, appended before
	// the services signed, are logged unattributed. 0: all.
	SignaturesFrom uint64
}

// Service is the trail service.
type Service struct {
	deps      Deps
	app       *app.App
	projector *projection.Projector
}

var _ rpc.Service = (*Service)(nil)

// New builds the service.
func New(d Deps) (*Service, error) {
	if d.Store == nil || d.Pool == nil || d.SigningKey == "" {
		return nil, errors.New("trail: store, pool and signing key are required")
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	d.Logger = d.Logger.With("service", "trail")
	if d.ReadWait == 0 {
		d.ReadWait = 5 * time.Second
	}
	if d.CheckpointEvery <= 0 {
		d.CheckpointEvery = 1000
	}
	if d.CheckpointInterval <= 0 {
		d.CheckpointInterval = 10 * time.Second
	}
	if d.Aggregates == nil {
		d.Aggregates = Aggregates()
	}
	if d.BatchSize <= 0 {
		d.BatchSize = 1000
	}
	if d.CatchUpBatchSize <= 0 {
		d.CatchUpBatchSize = 5000
	}
	if d.WitnessClient == nil {
		d.WitnessClient = &http.Client{Timeout: 30 * time.Second}
	}
	signer, err := ledger.NewSignerFor(d.SigningKey, d.Origin)
	if err != nil {
		return nil, fmt.Errorf("trail: %w", err)
	}
	if signer.Name() == Origin {
		// Every deployment of old signed as jsm-trail: a witness following
		// two of them could not tell their checkpoints apart.
		d.Logger.Warn("trail: the checkpoint origin is the shared default; set JSM_TRAIL_ORIGIN (or JSM_PUBLIC_URL) to name this deployment's log", "origin", Origin)
	}
	if d.SignerKeys.Len() == 0 {
		d.SignerKeys = nil
		d.Logger.Warn("trail: no signer keys pinned (JSM_TRAIL_SIGNER_KEYS): every event is logged, unattributed, forged ones too")
	} else {
		d.Logger.Info("trail: logging only events signed by the pinned key of their area", "signers", d.SignerKeys.IDs(), "from_position", d.SignaturesFrom)
	}
	projector, err := projection.New(projection.Config{
		Name: readmodel.Name, Schema: readmodel.Schema, Logger: d.Logger,
		BatchSize: d.BatchSize, CatchUpBatchSize: d.CatchUpBatchSize,
	}, readmodel.NewBuilder(d.Pool, readmodel.Log{Keys: d.SignerKeys, SignedFrom: d.SignaturesFrom}), d.Store, d.Pool)
	if err != nil {
		return nil, err
	}
	a, err := app.New(app.Config{Pool: d.Pool, Projector: projector, Signer: signer, ReadWait: d.ReadWait, Aggregates: d.Aggregates, Now: d.Now, SignerKeys: d.SignerKeys})
	if err != nil {
		return nil, err
	}
	return &Service{deps: d, app: a, projector: projector}, nil
}

// Name is "trail".
func (s *Service) Name() string { return "trail" }

// Projector is the trail's projector (status, rebuild).
func (s *Service) Projector() *projection.Projector { return s.projector }

// App is the trail's use cases (signing now, auditing).
func (s *Service) App() *app.App { return s.app }

// VerifierKey is the public key that checks the trail's checkpoints.
func (s *Service) VerifierKey() string { return s.app.Signer.VerifierKey() }

// Migrate creates the schema and the projector's checkpoint.
func (s *Service) Migrate(ctx context.Context) error {
	if err := pgdb.Migrate(ctx, s.deps.Pool, readmodel.Schema, readmodel.Migrations(), nil); err != nil {
		return err
	}
	return s.projector.Migrate(ctx)
}

// Run keeps the log up to date and signs checkpoints until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.projector.Run(ctx) })
	g.Go(func() error {
		return s.app.SignEvery(ctx, s.deps.CheckpointEvery, s.deps.CheckpointInterval, s.deps.Logger)
	})
	g.Go(func() error { return s.indexWhenCaughtUp(ctx) })
	for _, w := range s.deps.Witnesses {
		g.Go(func() error {
			return s.app.WitnessEvery(ctx, w, app.Witnessing{
				Client: s.deps.WitnessClient, Poll: min(s.deps.CheckpointInterval, time.Second),
				MinBackoff: time.Second, MaxBackoff: 5 * time.Minute, Log: s.deps.Logger,
			})
		})
	}
	return g.Wait()
}

// indexWhenCaughtUp builds the search indexes once the log is within a
// batch of the stream's end: after a first start or a rebuild, the log is
// loaded without them and they are built in bulk, far faster than kept up
// row by row. Queries work meanwhile, only slower.
func (s *Service) indexWhenCaughtUp(ctx context.Context) error {
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		last, err := s.deps.Store.LastPosition(ctx)
		if err != nil || last > s.projector.Position()+uint64(s.deps.BatchSize) {
			continue
		}
		missing, err := readmodel.MissingIndexes(ctx, s.deps.Pool)
		if err == nil && missing {
			start := time.Now()
			if err = readmodel.BuildIndexes(ctx, s.deps.Pool); err == nil {
				s.deps.Logger.Info("trail search indexes built", "position", s.projector.Position(), "took", time.Since(start).Round(time.Millisecond))
			}
		}
		if err != nil && ctx.Err() == nil {
			s.deps.Logger.Warn("trail: build search indexes", "err", err)
		}
	}
}

// Handlers mounts jsm.trail.v1.TrailService.
func (s *Service) Handlers(opts ...connect.HandlerOption) []rpc.Handler {
	path, h := trailv1connect.NewTrailServiceHandler(api.New(s.app, s.deps.Logger), opts...)
	return []rpc.Handler{{Path: path, Service: trailv1connect.TrailServiceName, Handler: http.Handler(h)}}
}

// Permissions of the trail service.
const (
	PermRead   auth.Permission = "trail.read"
	PermExport auth.Permission = "trail.export"
	// PermQuarantine lists the events the trail refused to log, of every
	// org: the platform operator's, no role within an org has it.
	PermQuarantine auth.Permission = "trail.quarantine"
)

// OperatorRole operates the platform (as `jsm up`'s admin API names it);
// it is no role within an org.
const OperatorRole = "platform-operator"

// Policy: which role may call which procedure. README.md documents it.
func (s *Service) Policy() auth.Policy { return Policy() }

// Policy is the service's access policy.
func Policy() auth.Policy {
	return auth.Policy{
		Procedures: map[string]auth.Permission{
			trailv1connect.TrailServiceSearchEventsProcedure:        PermRead,
			trailv1connect.TrailServiceReplayEventsProcedure:        PermRead,
			trailv1connect.TrailServiceGetAggregateAtProcedure:      PermRead,
			trailv1connect.TrailServiceGetCheckpointProcedure:       PermRead,
			trailv1connect.TrailServiceGetInclusionProofProcedure:   PermRead,
			trailv1connect.TrailServiceGetConsistencyProofProcedure: PermRead,
			trailv1connect.TrailServiceExportInvestigationProcedure: PermExport,
			trailv1connect.TrailServiceListQuarantineProcedure:      PermQuarantine,
		},
		Roles: map[string][]auth.Permission{
			"org-admin":        {PermRead, PermExport},
			"auditor":          {PermRead, PermExport},
			"security-officer": {PermRead},
			"contract-manager": {PermRead},
			OperatorRole:       {PermQuarantine},
		},
	}
}

// Origin is the name of the signing keys made before each deployment named
// its own log (FromEnv now names a new key after its origin, NewOrigin).
const Origin = "jsm-trail"

// KeyFile is the signing key's file name in a data dir.
const KeyFile = "trail-signing.key"

// LoadOrCreateKey returns the note signer key kept in dir/KeyFile,
// creating one named origin (0600) if there is none.
func LoadOrCreateKey(dir, origin string) (string, error) {
	path := filepath.Join(dir, KeyFile)
	data, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(data)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read trail signing key: %w", err)
	}
	skey, _, err := ledger.GenerateKey(origin)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadOrCreateKey(dir, origin) // another process won the race
	}
	if err != nil {
		return "", fmt.Errorf("create trail signing key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		_ = f.Close()
		return "", fmt.Errorf("write trail signing key: %w", err)
	}
	return skey, f.Close()
}
