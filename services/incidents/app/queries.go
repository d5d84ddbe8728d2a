package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/cursor"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/services/incidents/domain"
	readmodel "github.com/jsmplatform/jsm/services/incidents/projection"
)

// Queries reads incidents and exercises, always on behalf of one org.
type Queries struct {
	pool      *pgxpool.Pool
	projector *projection.Projector
	maxWait   time.Duration
}

// NewQueries returns the query handlers; a read with a min position waits
// for the projector at most maxWait.
func NewQueries(pool *pgxpool.Pool, projector *projection.Projector, maxWait time.Duration) (*Queries, error) {
	if pool == nil || projector == nil {
		return nil, errors.New("app: pool and projector are required")
	}
	return &Queries{pool: pool, projector: projector, maxWait: maxWait}, nil
}

func (q *Queries) wait(ctx context.Context, minPosition uint64) error {
	if err := q.projector.WaitFor(ctx, minPosition, q.maxWait); err != nil {
		return fmt.Errorf("read model: %w", err)
	}
	return nil
}

// Get returns an incident of a contract the org is a party to; any other
// incident is not found, whether or not it exists.
func (q *Queries) Get(ctx context.Context, org domain.OrgID, id string, minPosition uint64) (*incidentsv1.Incident, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, err
	}
	found, err := states[domain.State](ctx, q.pool, org, `
		SELECT state FROM incidents.incidents
		WHERE incident_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`, id, string(org))
	if err != nil {
		return nil, fmt.Errorf("get incident %s: %w", id, err)
	}
	if len(found) == 0 {
		return nil, domain.NotFoundError{What: "incident", ID: id}
	}
	return domain.ToProto(found[0], true), nil
}

// ListFilter narrows a list; zero values mean any.
type ListFilter struct {
	ContractID   string
	Status       incidentsv1.IncidentStatus
	Severity     commonv1.Severity
	OverdueOnly  bool
	OverdueClock incidentsv1.ClockKind
	PageSize     int
	PageToken    string
	MinPosition  uint64
}

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = domain.ValidationError{Field: "page_token", Reason: "not a token from an earlier page"}

// DefaultPageSize applies when a list asks for no size.
const DefaultPageSize = 50

// List returns the org's incidents, newest report first, a page at a time.
func (q *Queries) List(ctx context.Context, org domain.OrgID, f ListFilter) ([]*incidentsv1.Incident, string, error) {
	if err := q.wait(ctx, f.MinPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := decodeToken(f.PageToken)
	if err != nil {
		return nil, "", err
	}
	size := pageSize(f.PageSize)
	overdue := f.OverdueOnly || f.OverdueClock != incidentsv1.ClockKind_CLOCK_KIND_UNSPECIFIED
	found, err := states[domain.State](ctx, q.pool, org, `
		SELECT i.state FROM incidents.incidents i
		WHERE (i.customer_org_id = $1 OR i.provider_org_id = $1)
		  AND ($2 = '' OR i.contract_id = $2)
		  AND ($3 = 0 OR i.status = $3)
		  AND ($4 = 0 OR i.severity = $4)
		  AND (NOT $5 OR EXISTS (
		        SELECT 1 FROM incidents.clocks c
		        WHERE c.incident_id = i.incident_id AND c.overdue AND c.met_at IS NULL AND ($6 = 0 OR c.kind = $6)))
		  AND ($7::timestamptz IS NULL OR (i.reported_at, i.incident_id) < ($7, $8))
		ORDER BY i.reported_at DESC, i.incident_id DESC
		LIMIT $9`,
		string(org), f.ContractID, int16(f.Status), int16(f.Severity), overdue, int16(f.OverdueClock), after, afterID, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	next := ""
	if len(found) > size {
		found = found[:size]
		last := found[size-1]
		next = cursor.Encode(last.ReportedAt, last.ID)
	}
	out := make([]*incidentsv1.Incident, len(found))
	for i, s := range found {
		out[i] = domain.ToProto(s, false)
	}
	return out, next, nil
}

// ListExercises returns a contract's exercises in the order they are
// scheduled; a contract the org is no party to has none.
func (q *Queries) ListExercises(ctx context.Context, org domain.OrgID, contractID string, pageSizeWanted int, token string, minPosition uint64) ([]*incidentsv1.Exercise, string, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := decodeToken(token)
	if err != nil {
		return nil, "", err
	}
	size := pageSize(pageSizeWanted)
	found, err := states[domain.Exercise](ctx, q.pool, org, `
		SELECT state FROM incidents.exercises
		WHERE contract_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)
		  AND ($3::timestamptz IS NULL OR (scheduled_for, exercise_id) > ($3, $4))
		ORDER BY scheduled_for, exercise_id
		LIMIT $5`, contractID, string(org), after, afterID, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list exercises: %w", err)
	}
	next := ""
	if len(found) > size {
		found = found[:size]
		last := found[size-1]
		next = cursor.Encode(last.ScheduledFor, last.ID)
	}
	out := make([]*incidentsv1.Exercise, len(found))
	for i, x := range found {
		out[i] = domain.ExerciseToProto(x)
	}
	return out, next, nil
}

func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return n
}

// decodeToken returns the sort key of a page token (package cursor).
func decodeToken(token string) (*time.Time, string, error) {
	t, id, err := cursor.Decode(token)
	if err != nil {
		return nil, "", ErrBadPageToken
	}
	return t, id, nil
}

// states runs a query of stored states on behalf of org. The query names
// the org itself (which the indexes need); row-level security backs it up.
func states[S any](ctx context.Context, pool *pgxpool.Pool, org domain.OrgID, sql string, args ...any) ([]S, error) {
	return pgdb.ReadJSONAs[S](ctx, pool, readmodel.Schema, string(org), sql, args...)
}
