package ingest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/telemetry"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1/changeadvisoryv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/ingest/mapping"
)

// applied is what an event's commands did.
type applied struct {
	ref        mapping.Ref
	contractID string
	objectType string
	objectID   string
	position   uint64
	changed    bool
}

// executor gives the commands of an Action to the platform's APIs as the
// source, and keeps which object each external ticket became.
type executor struct {
	pool     *pgxpool.Pool
	platform func() Platform
	log      *slog.Logger

	mu     sync.Mutex
	tokens map[domain.SourceID]token
	apis   *apis
}

// apis are the Connect clients of the platform's APIs, made again only
// when the platform's addresses change (they are asked for on every event).
type apis struct {
	of        [3]string
	http      connect.HTTPClient
	incidents incidentsv1connect.IncidentServiceClient
	patching  patchingv1connect.PatchServiceClient
	changes   changeadvisoryv1connect.ChangeServiceClient
}

func (x *executor) clients(p Platform) *apis {
	of, h := [3]string{p.Incidents, p.Patching, p.Changes}, p.http()
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.apis == nil || x.apis.of != of || x.apis.http != h {
		x.apis = &apis{of: of, http: h,
			incidents: incidentsv1connect.NewIncidentServiceClient(h, p.Incidents),
			patching:  patchingv1connect.NewPatchServiceClient(h, p.Patching),
			changes:   changeadvisoryv1connect.NewChangeServiceClient(h, p.Changes),
		}
	}
	return x.apis
}

type token struct {
	value     string
	until     time.Time
	contracts []string // the source's when minted
}

func newExecutor(pool *pgxpool.Pool, platform func() Platform, log *slog.Logger) *executor {
	return &executor{pool: pool, platform: platform, log: log, tokens: map[domain.SourceID]token{}}
}

// call is one event's conversation with the platform: who calls, and the
// keys that make each command idempotent.
type call struct {
	x        *executor
	api      *apis
	bearer   string
	base     string // the request ids' stem, from the source and the event id
	refBase  string // the stem of creations, from the ticket: one ticket, one object
	corr     string
	position uint64
	changed  bool
}

// run applies act for the event eventID of src.
func (x *executor) run(ctx context.Context, src domain.State, eventID string, act mapping.Action) (applied, error) {
	p := x.platform()
	bearer, err := x.token(src, p)
	if err != nil {
		return applied{}, err
	}
	c := &call{x: x, api: x.clients(p), bearer: bearer, base: key("event", string(src.ID), eventID), corr: "ingest/" + url.PathEscape(string(src.ID)) + "/" + url.PathEscape(eventID)}
	c.refBase = c.base
	if !act.Ref.IsZero() {
		c.refBase = key("ref", string(src.Org), string(act.Object), act.Ref.System, act.Ref.ID)
		// Escaped: a correlation id is a token (libs/event bounds).
		c.corr = "ingest/" + url.PathEscape(act.Ref.System) + "/" + url.PathEscape(act.Ref.ID)
	}
	out := applied{ref: act.Ref, contractID: act.ContractID, objectType: string(act.Object)}
	known, err := x.lookup(ctx, src.Org, act)
	if err != nil {
		return out, err
	}
	if known.objectID != "" && known.contractID != act.ContractID {
		return out, reject("contract-mismatch", "%s %s/%s belongs to contract %s, not %s", act.Object, act.Ref.System, act.Ref.ID, known.contractID, act.ContractID)
	}
	c.position = known.position
	switch act.Object {
	case mapping.Incident:
		out.objectID, err = c.incident(ctx, act, known.objectID)
	case mapping.Remediation:
		out.objectID, err = c.remediation(ctx, act, known.objectID)
	case mapping.Assets:
		out.objectType, out.objectID = "inventory", act.ContractID
		err = c.assets(ctx, act)
	case mapping.Change:
		out.objectID, err = c.change(ctx, act, known.objectID)
	default:
		err = reject("unmappable", "no platform object %q", act.Object)
	}
	out.position, out.changed = c.position, c.changed
	// The ticket names its object as soon as there is one, even when a
	// later step of the event was refused.
	if out.objectID != "" && !act.Ref.IsZero() && act.Object != mapping.Assets {
		if rerr := x.remember(ctx, src.Org, act, out); err == nil {
			err = rerr
		}
	}
	return out, err
}

func (c *call) incident(ctx context.Context, act mapping.Action, id string) (string, error) {
	client := c.api.incidents
	if id == "" {
		id = act.ObjectID
	}
	var cur *incidentsv1.Incident
	if id == "" {
		if act.ReportIncident == nil {
			return "", reject("unknown-ticket", "no incident for %s %s: report it first", act.Ref.System, act.Ref.ID)
		}
		req := cloneMsg(act.ReportIncident)
		req.ContractId, req.RequestId = act.ContractID, c.refBase+":report"
		res, err := do(ctx, c, client.ReportIncident, req)
		if err != nil {
			return "", err
		}
		id = res.GetIncidentId()
		c.step(res.GetPosition())
		cur = &incidentsv1.Incident{IncidentId: id, Status: incidentsv1.IncidentStatus_INCIDENT_STATUS_OPEN, Severity: req.GetSeverity(), Category: req.GetCategory()}
	} else if act.Assess != nil || act.Resolve != nil {
		res, err := do(ctx, c, client.GetIncident, &incidentsv1.GetIncidentRequest{IncidentId: id, MinPosition: c.position})
		if err != nil {
			return id, err
		}
		cur = res.GetIncident()
		if cur.GetContractId() != act.ContractID {
			return id, reject("contract-mismatch", "incident %s belongs to another contract", id)
		}
	}
	if a := act.Assess; a != nil && (a.GetSeverity() != cur.GetSeverity() || (a.GetCategory() != "" && a.GetCategory() != cur.GetCategory())) {
		req := &incidentsv1.AssessIncidentRequest{IncidentId: id, Severity: a.GetSeverity(), Category: a.GetCategory(), Rationale: a.GetRationale(), RequestId: c.base + ":assess"}
		if req.Severity == 0 {
			req.Severity = cur.GetSeverity()
		}
		res, err := do(ctx, c, client.AssessIncident, req)
		if err != nil {
			return id, err
		}
		c.step(res.GetPosition())
	}
	if n := act.Note; n != nil {
		res, err := do(ctx, c, client.AddTimelineEntry, &incidentsv1.AddTimelineEntryRequest{IncidentId: id, Text: n.GetText(), OccurredAt: n.GetOccurredAt(), RequestId: c.base + ":note"})
		if err != nil {
			return id, err
		}
		c.step(res.GetPosition())
	}
	if r := act.Resolve; r != nil && cur.GetStatus() != incidentsv1.IncidentStatus_INCIDENT_STATUS_RESOLVED && cur.GetStatus() != incidentsv1.IncidentStatus_INCIDENT_STATUS_CLOSED {
		res, err := do(ctx, c, client.ResolveIncident, &incidentsv1.ResolveIncidentRequest{IncidentId: id, Summary: r.GetSummary(), RequestId: c.base + ":resolve"})
		if err != nil {
			return id, err
		}
		c.step(res.GetPosition())
	}
	return id, nil
}

func (c *call) remediation(ctx context.Context, act mapping.Action, id string) (string, error) {
	if id != "" {
		return id, nil // the finding is registered already
	}
	if act.RegisterVulnerability == nil {
		return "", reject("unknown-ticket", "no vulnerability for %s %s", act.Ref.System, act.Ref.ID)
	}
	client := c.api.patching
	req := cloneMsg(act.RegisterVulnerability)
	req.ContractId, req.RequestId = act.ContractID, c.refBase+":register"
	res, err := do(ctx, c, client.RegisterVulnerability, req)
	if err != nil {
		return "", err
	}
	c.step(res.GetPosition())
	return res.GetRemediationId(), nil
}

func (c *call) assets(ctx context.Context, act mapping.Action) error {
	if act.RegisterAssets == nil {
		return reject("invalid-field", "no assets")
	}
	client := c.api.patching
	req := cloneMsg(act.RegisterAssets)
	req.ContractId, req.RequestId = act.ContractID, c.base+":assets"
	res, err := do(ctx, c, client.RegisterAssets, req)
	if err != nil {
		return err
	}
	c.step(res.GetPosition())
	return nil
}

func (c *call) change(ctx context.Context, act mapping.Action, id string) (string, error) {
	client := c.api.changes
	if id == "" {
		id = act.ObjectID
	}
	status := changeadvisoryv1.ChangeStatus_CHANGE_STATUS_REQUESTED
	if id == "" {
		if act.RequestChange == nil {
			return "", reject("unknown-ticket", "no change for %s %s: request it first", act.Ref.System, act.Ref.ID)
		}
		req := cloneMsg(act.RequestChange)
		req.ContractId, req.RequestId = act.ContractID, c.refBase+":request"
		res, err := do(ctx, c, client.RequestChange, req)
		if err != nil {
			return "", err
		}
		id = res.GetChangeId()
		c.step(res.GetPosition())
	} else if act.Implementation != nil || act.CloseChange != nil {
		res, err := do(ctx, c, client.GetChange, &changeadvisoryv1.GetChangeRequest{ChangeId: id, MinPosition: c.position})
		if err != nil {
			return id, err
		}
		if res.GetChange().GetContractId() != act.ContractID {
			return id, reject("contract-mismatch", "change %s belongs to another contract", id)
		}
		status = res.GetChange().GetStatus()
	}
	if im := act.Implementation; im != nil && !implementedOrAfter(status) {
		res, err := do(ctx, c, client.RecordImplementation, &changeadvisoryv1.RecordImplementationRequest{ChangeId: id, Success: im.GetSuccess(), Notes: im.GetNotes(), RequestId: c.base + ":implementation"})
		if err != nil {
			return id, err
		}
		c.step(res.GetPosition())
	}
	if act.CloseChange != nil && status != changeadvisoryv1.ChangeStatus_CHANGE_STATUS_CLOSED {
		res, err := do(ctx, c, client.CloseChange, &changeadvisoryv1.CloseChangeRequest{ChangeId: id, RequestId: c.base + ":close"})
		if err != nil {
			return id, err
		}
		c.step(res.GetPosition())
	}
	return id, nil
}

// step notes a command's position.
func (c *call) step(pos uint64) {
	c.changed = true
	c.position = max(c.position, pos)
}

// do makes one call as the source, with the event's correlation and the
// caller's trace, and sorts its failure: what the platform refuses is a
// rejection; anything else is transient.
func do[Req, Res any](ctx context.Context, c *call, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), msg *Req) (*Res, error) {
	req := connect.NewRequest(msg)
	req.Header().Set("Authorization", "Bearer "+c.bearer)
	req.Header().Set(rpc.HeaderCorrelation, c.corr)
	if tp := telemetry.TraceParent(ctx); tp != "" {
		req.Header().Set("traceparent", tp)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := fn(ctx, req)
	if err == nil {
		return res.Msg, nil
	}
	switch code := connect.CodeOf(err); code {
	case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodeNotFound,
		connect.CodePermissionDenied, connect.CodeAlreadyExists, connect.CodeOutOfRange:
		return nil, reject("refused", "%s: %s", code, connectMessage(err))
	case connect.CodeUnauthenticated:
		// The platform does not accept ingest's tokens: a deployment error
		// to fix, not the source's fault; the event can come again.
		c.x.log.ErrorContext(ctx, "platform refused ingest's token", "err", err)
		return nil, fmt.Errorf("platform refused ingest's token: %w", err)
	default:
		return nil, fmt.Errorf("platform call: %w", err)
	}
}

func connectMessage(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce.Message()
	}
	return err.Error()
}

// token is a bearer token for the source, reused while it is fresh.
func (x *executor) token(src domain.State, p Platform) (string, error) {
	x.mu.Lock()
	defer x.mu.Unlock()
	// A token names the source's contracts: one minted before the source
	// changed them is not reused.
	if t, ok := x.tokens[src.ID]; ok && time.Now().Before(t.until) && slices.Equal(t.contracts, src.ContractIDs) {
		return t.value, nil
	}
	if p.Token == nil {
		return "", errors.New("ingest: no token minter")
	}
	v, err := p.Token(Principal(src))
	if err != nil {
		return "", fmt.Errorf("mint source token: %w", err)
	}
	// Tokens are minted for TokenTTL; a fresh one is taken well before.
	x.tokens[src.ID] = token{value: v, until: time.Now().Add(TokenTTL / 2), contracts: slices.Clone(src.ContractIDs)}
	return v, nil
}

// TokenTTL is how long the tokens ingest mints should be valid.
const TokenTTL = 10 * time.Minute

// Principal is who a source is on the platform: a user of its org with
// the itsm-source role, acting on the contracts it was registered for and
// no other.
func Principal(src domain.State) auth.Principal {
	return auth.Principal{
		Org: string(src.Org), User: auth.SourceUserPrefix + string(src.ID), Roles: []string{Role},
		Contracts: append([]string{}, src.ContractIDs...),
	}
}

func (p Platform) http() connect.HTTPClient {
	if p.HTTP != nil {
		return p.HTTP
	}
	return platformClient
}

// platformClient keeps a connection open for each command a batch may
// have in flight: the default transport keeps two per host, and every
// other call would open and close one.
var platformClient = func() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 4 * batchWorkers
	return &http.Client{Transport: t}
}()

// key is a request id (at most 128 characters) from parts.
func key(kind string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return "ingest-" + kind + "-" + hex.EncodeToString(h.Sum(nil))[:40]
}

type knownRef struct {
	objectID, contractID string
	position             uint64
}

func (x *executor) lookup(ctx context.Context, org domain.OrgID, act mapping.Action) (knownRef, error) {
	if act.Ref.IsZero() {
		return knownRef{}, nil
	}
	var k knownRef
	var pos int64
	err := x.pool.QueryRow(ctx, `SELECT object_id, contract_id, position FROM ingest.refs WHERE org_id = $1 AND object_type = $2 AND system = $3 AND ref_id = $4`,
		string(org), string(act.Object), act.Ref.System, act.Ref.ID).Scan(&k.objectID, &k.contractID, &pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return knownRef{}, nil
	}
	k.position = uint64(pos)
	return k, err
}

func (x *executor) remember(ctx context.Context, org domain.OrgID, act mapping.Action, out applied) error {
	_, err := x.pool.Exec(ctx, `INSERT INTO ingest.refs (org_id, object_type, system, ref_id, contract_id, object_id, position) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (org_id, object_type, system, ref_id) DO UPDATE SET position = GREATEST(ingest.refs.position, $7)`,
		string(org), string(act.Object), act.Ref.System, act.Ref.ID, act.ContractID, out.objectID, int64(out.position))
	return err
}

func cloneMsg[T any, P interface {
	*T
	proto.Message
}](m P) P {
	return proto.Clone(m).(P)
}

func cloneReport(m *incidentsv1.ReportIncidentRequest) *incidentsv1.ReportIncidentRequest {
	return cloneMsg(m)
}

// implementedOrAfter: the change's implementation is recorded (it may have
// been rolled back or closed since).
func implementedOrAfter(s changeadvisoryv1.ChangeStatus) bool {
	switch s {
	case changeadvisoryv1.ChangeStatus_CHANGE_STATUS_IMPLEMENTED, changeadvisoryv1.ChangeStatus_CHANGE_STATUS_FAILED,
		changeadvisoryv1.ChangeStatus_CHANGE_STATUS_ROLLED_BACK, changeadvisoryv1.ChangeStatus_CHANGE_STATUS_CLOSED:
		return true
	}
	return false
}

// Minter mints ingest's tokens with key, under integration's own issuer
// and audience: the services ingest drives accept them for a source only
// (auth.SourceIssuer), the others not at all.
func Minter(key ed25519.PrivateKey) func(auth.Principal) (string, error) {
	return func(p auth.Principal) (string, error) {
		return auth.Mint(key, auth.IntegrationIssuer, auth.IntegrationAudience, p, TokenTTL)
	}
}
