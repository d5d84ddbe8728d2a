package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/cursor"
	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	"github.com/jsmplatform/jsm/services/audits/domain"
	readmodel "github.com/jsmplatform/jsm/services/audits/projection"
)

// Queries reads audits, findings and checklists, always on behalf of one org.
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

// Get returns an audit of a contract the org is a party to, with its
// findings and measures; any other audit is not found, whether or not it exists.
func (q *Queries) Get(ctx context.Context, org domain.OrgID, id string, minPosition uint64) (*auditsv1.Audit, error) {
	s, err := readOne[domain.State](ctx, q, org, minPosition, "audit", id, `
		SELECT state FROM audits.audits
		WHERE audit_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`)
	if err != nil {
		return nil, err
	}
	return domain.ToProto(s), nil
}

// readOne reads the stored state of one object (what, id) on behalf of
// org, once the read model has minPosition; the query takes the id and
// the org. None is not found.
func readOne[S any](ctx context.Context, q *Queries, org domain.OrgID, minPosition uint64, what, id, sql string) (S, error) {
	var zero S
	if err := q.wait(ctx, minPosition); err != nil {
		return zero, err
	}
	found, err := pgdb.ReadJSONAs[S](ctx, q.pool, readmodel.Schema, string(org), sql, id, string(org))
	if err != nil {
		return zero, fmt.Errorf("get %s %s: %w", what, id, err)
	}
	if len(found) == 0 {
		return zero, domain.NotFoundError{What: what, ID: id}
	}
	return found[0], nil
}

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = domain.ValidationError{Field: "page_token", Reason: "not a token from an earlier page"}

// DefaultPageSize applies when a list asks for no size.
const DefaultPageSize = 50

// Page is what every list takes besides its filters.
type Page struct {
	Size        int
	Token       string
	MinPosition uint64
}

func (p Page) size() int {
	if p.Size <= 0 {
		return DefaultPageSize
	}
	return p.Size
}

// AuditFilter narrows ListAudits; zero values mean any.
type AuditFilter struct {
	ContractID string
	Status     auditsv1.AuditStatus
}

// List returns the org's audits, newest plan first, a page at a time.
func (q *Queries) List(ctx context.Context, org domain.OrgID, f AuditFilter, p Page) ([]*auditsv1.Audit, string, error) {
	if err := q.wait(ctx, p.MinPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := decodeToken(p.Token)
	if err != nil {
		return nil, "", err
	}
	size := p.size()
	found, err := pgdb.ReadJSONAs[domain.State](ctx, q.pool, readmodel.Schema, string(org), `
		SELECT state FROM audits.audits
		WHERE (customer_org_id = $1 OR provider_org_id = $1)
		  AND ($2 = '' OR contract_id = $2)
		  AND ($3 = 0 OR status = $3)
		  AND ($4::timestamptz IS NULL OR (planned_at, audit_id) < ($4, $5))
		ORDER BY planned_at DESC, audit_id DESC
		LIMIT $6`,
		string(org), f.ContractID, int16(f.Status), after, afterID, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list audits: %w", err)
	}
	out, next := pageOf(found, size, func(s domain.State) (time.Time, string) { return s.PlannedAt, s.ID }, domain.ToProto)
	return out, next, nil
}

// FindingFilter narrows ListFindings; zero values mean any.
type FindingFilter struct {
	AuditID     string
	ContractID  string
	Status      auditsv1.FindingStatus
	Severity    commonv1.Severity
	OverdueOnly bool
}

// Findings returns the org's findings, newest first, a page at a time.
func (q *Queries) Findings(ctx context.Context, org domain.OrgID, f FindingFilter, p Page) ([]*auditsv1.Finding, string, error) {
	if err := q.wait(ctx, p.MinPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := decodeToken(p.Token)
	if err != nil {
		return nil, "", err
	}
	size := p.size()
	type row struct {
		id   string
		at   time.Time
		view *auditsv1.Finding
	}
	var found []row
	err = pgdb.ReadAs(ctx, q.pool, readmodel.Schema, string(org), `
		SELECT finding_id, recorded_at, finding FROM audits.findings
		WHERE (customer_org_id = $1 OR provider_org_id = $1)
		  AND ($2 = '' OR audit_id = $2)
		  AND ($3 = '' OR contract_id = $3)
		  AND ($4 = 0 OR status = $4)
		  AND ($5 = 0 OR severity = $5)
		  AND (NOT $6 OR overdue)
		  AND ($7::timestamptz IS NULL OR (recorded_at, finding_id) < ($7, $8))
		ORDER BY recorded_at DESC, finding_id DESC
		LIMIT $9`,
		[]any{string(org), f.AuditID, f.ContractID, int16(f.Status), int16(f.Severity), f.OverdueOnly, after, afterID, size + 1},
		func(rows pgx.Rows) error {
			var r row
			var raw []byte
			_, err := pgx.ForEachRow(rows, []any{&r.id, &r.at, &raw}, func() error {
				v := &auditsv1.Finding{}
				if err := proto.Unmarshal(raw, v); err != nil {
					return fmt.Errorf("finding %s: %w", r.id, err)
				}
				found = append(found, row{id: r.id, at: r.at, view: v})
				return nil
			})
			return err
		})
	if err != nil {
		return nil, "", fmt.Errorf("list findings: %w", err)
	}
	out, next := pageOf(found, size, func(r row) (time.Time, string) { return r.at, r.id }, func(r row) *auditsv1.Finding { return r.view })
	return out, next, nil
}

// Checklist returns the checklist of a contract the org is a party to; a
// contract without one (or of other orgs) is not found.
func (q *Queries) Checklist(ctx context.Context, org domain.OrgID, contractID string, minPosition uint64) (*auditsv1.Checklist, error) {
	c, err := readOne[domain.Checklist](ctx, q, org, minPosition, "checklist", contractID, `
		SELECT state FROM audits.checklists
		WHERE contract_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`)
	if err != nil {
		return nil, err
	}
	return domain.ChecklistToProto(c), nil
}

// pageOf maps the rows of a page read with one row more than size, and
// returns the token of the next page (none when that row is missing).
func pageOf[R, V any](found []R, size int, key func(R) (time.Time, string), view func(R) V) ([]V, string) {
	next := ""
	if len(found) > size {
		found = found[:size]
		next = cursor.Encode(key(found[size-1]))
	}
	out := make([]V, len(found))
	for i, r := range found {
		out[i] = view(r)
	}
	return out, next
}

// decodeToken returns the sort key of a page token (package cursor).
func decodeToken(token string) (*time.Time, string, error) {
	t, id, err := cursor.Decode(token)
	if err != nil {
		return nil, "", ErrBadPageToken
	}
	return t, id, nil
}
