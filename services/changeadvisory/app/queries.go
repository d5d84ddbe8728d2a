package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/jsmplatform/jsm/libs/cursor"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	"github.com/jsmplatform/jsm/services/changeadvisory/domain"
	readmodel "github.com/jsmplatform/jsm/services/changeadvisory/projection"
)

// Queries reads changes, always on behalf of one org.
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

// Get returns a change of a contract the org is a party to; any other
// change is not found, whether or not it exists.
func (q *Queries) Get(ctx context.Context, org domain.OrgID, id string, minPosition uint64) (*changeadvisoryv1.Change, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, err
	}
	found, err := states(ctx, q.pool, org, `
		SELECT state FROM changeadvisory.changes
		WHERE change_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`, id, string(org))
	if err != nil {
		return nil, fmt.Errorf("get change %s: %w", id, err)
	}
	if len(found) == 0 {
		return nil, domain.NotFoundError{What: "change", ID: id}
	}
	return domain.ToProto(found[0]), nil
}

// ListFilter narrows a list; zero values mean any.
type ListFilter struct {
	ContractID    string
	Status        changeadvisoryv1.ChangeStatus
	EmergencyOnly bool
	// LinkedKind and LinkedID: only changes linked to this object (both or neither).
	LinkedKind  string
	LinkedID    string
	PageSize    int
	PageToken   string
	MinPosition uint64
}

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = domain.ValidationError{Field: "page_token", Reason: "not a token from an earlier page"}

// ErrHalfLink rejects a linked-object filter with a kind but no id, or an id but no kind.
var ErrHalfLink = domain.ValidationError{Field: "linked_id", Reason: "linked_kind and linked_id are given together"}

// DefaultPageSize applies when a list asks for no size.
const DefaultPageSize = 50

// List returns the org's changes, newest request first, a page at a time.
func (q *Queries) List(ctx context.Context, org domain.OrgID, f ListFilter) ([]*changeadvisoryv1.Change, string, error) {
	if (f.LinkedKind == "") != (f.LinkedID == "") {
		return nil, "", ErrHalfLink
	}
	if err := q.wait(ctx, f.MinPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := decodeToken(f.PageToken)
	if err != nil {
		return nil, "", err
	}
	size := f.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	link := ""
	if f.LinkedKind != "" {
		b, err := json.Marshal([]map[string]string{{"kind": f.LinkedKind, "id": f.LinkedID}})
		if err != nil {
			return nil, "", err
		}
		link = string(b)
	}
	found, err := states(ctx, q.pool, org, `
		SELECT state FROM changeadvisory.changes
		WHERE (customer_org_id = $1 OR provider_org_id = $1)
		  AND ($2 = '' OR contract_id = $2)
		  AND ($3 = 0 OR status = $3)
		  AND (NOT $4 OR emergency)
		  AND ($5 = '' OR links @> $5::jsonb)
		  AND ($6::timestamptz IS NULL OR (requested_at, change_id) < ($6, $7))
		ORDER BY requested_at DESC, change_id DESC
		LIMIT $8`,
		string(org), f.ContractID, int16(f.Status), f.EmergencyOnly, link, after, afterID, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list changes: %w", err)
	}
	next := ""
	if len(found) > size {
		found = found[:size]
		last := found[size-1]
		next = cursor.Encode(last.RequestedAt, last.ID)
	}
	out := make([]*changeadvisoryv1.Change, len(found))
	for i, s := range found {
		out[i] = domain.ToProto(s)
	}
	return out, next, nil
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
func states(ctx context.Context, pool *pgxpool.Pool, org domain.OrgID, sql string, args ...any) ([]domain.State, error) {
	return pgdb.ReadJSONAs[domain.State](ctx, pool, readmodel.Schema, string(org), sql, args...)
}
