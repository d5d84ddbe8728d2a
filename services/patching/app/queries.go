package app

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/projection"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/services/patching/domain"
	readmodel "github.com/jsmplatform/jsm/services/patching/projection"
)

// Queries reads the inventory and the patch register, always on behalf of one org.
type Queries struct {
	pool      *pgxpool.Pool
	projector *projection.Projector
	maxWait   time.Duration
}

// NewQueries returns the query handlers.
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

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = domain.ValidationError{Field: "page_token", Reason: "not a token from an earlier page"}

// DefaultPageSize applies when a list asks for no size.
const DefaultPageSize = 50

func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return n
}

// Get returns a remediation of a contract the org is a party to.
func (q *Queries) Get(ctx context.Context, org domain.OrgID, id string, minPosition uint64) (*patchingv1.Remediation, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, err
	}
	found, err := remediations(ctx, q.pool, org, `
		SELECT state FROM patching.remediations
		WHERE remediation_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`, id, string(org))
	if err != nil {
		return nil, err
	}
	if len(found) == 0 {
		return nil, domain.NotFoundError{What: "remediation", ID: id}
	}
	return domain.ToProto(found[0], true), nil
}

// RegisterFilter narrows the patch register; zero values mean any.
type RegisterFilter struct {
	ContractID  string
	Status      patchingv1.RemediationStatus
	Severity    commonv1.Severity
	AssetID     string
	OverdueOnly bool
	DueBefore   time.Time
	PageSize    int
	PageToken   string
	MinPosition uint64
}

// List is the patch register: the org's remediations, soonest due first.
func (q *Queries) List(ctx context.Context, org domain.OrgID, f RegisterFilter) ([]*patchingv1.Remediation, string, error) {
	if err := q.wait(ctx, f.MinPosition); err != nil {
		return nil, "", err
	}
	after, afterID, err := decodeToken(f.PageToken)
	if err != nil {
		return nil, "", err
	}
	var dueBefore *time.Time
	if !f.DueBefore.IsZero() {
		dueBefore = &f.DueBefore
	}
	size := pageSize(f.PageSize)
	found, err := remediations(ctx, q.pool, org, `
		SELECT r.state FROM patching.remediations r
		WHERE (r.customer_org_id = $1 OR r.provider_org_id = $1)
		  AND ($2 = '' OR r.contract_id = $2)
		  AND ($3 = 0 OR r.status = $3)
		  AND ($4 = 0 OR r.severity = $4)
		  AND ($5 = '' OR EXISTS (SELECT 1 FROM patching.remediation_assets a WHERE a.remediation_id = r.remediation_id AND a.asset_id = $5))
		  AND (NOT $6 OR r.overdue)
		  AND ($7::timestamptz IS NULL OR (r.due_at < $7 AND r.status <> $10))
		  AND ($8::text IS NULL OR (coalesce(r.due_at, 'infinity'), r.remediation_id) > ($8::timestamptz, $9))
		ORDER BY coalesce(r.due_at, 'infinity'), r.remediation_id
		LIMIT $11`,
		string(org), f.ContractID, int16(f.Status), int16(f.Severity), f.AssetID, f.OverdueOnly, dueBefore, after, afterID,
		int16(patchingv1.RemediationStatus_REMEDIATION_STATUS_FIXED), size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list remediations: %w", err)
	}
	next := ""
	if len(found) > size {
		found = found[:size]
		last := found[size-1]
		due := "infinity" // no due date sorts last
		if !last.DueAt.IsZero() {
			due = last.DueAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano) // as stored
		}
		next = base64.RawURLEncoding.EncodeToString([]byte(due + "|" + last.ID))
	}
	out := make([]*patchingv1.Remediation, len(found))
	for i, r := range found {
		out[i] = domain.ToProto(r, false)
	}
	return out, next, nil
}

// Assets lists a contract's inventory in asset id order.
func (q *Queries) Assets(ctx context.Context, org domain.OrgID, contractID string, includeRetired bool, size int, token string, minPosition uint64) ([]*patchingv1.InventoryAsset, string, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, "", err
	}
	after := ""
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(b) == 0 {
			return nil, "", ErrBadPageToken
		}
		after = string(b)
	}
	size = pageSize(size)
	var out []*patchingv1.InventoryAsset
	err := pgdb.ReadAs(ctx, q.pool, readmodel.Schema, string(org), `
		SELECT asset, retired_at FROM patching.assets
		WHERE contract_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)
		  AND ($3 OR retired_at IS NULL) AND asset_id > $4
		ORDER BY asset_id LIMIT $5`, []any{contractID, string(org), includeRetired, after, size + 1}, func(rows pgx.Rows) error {
		for rows.Next() {
			var blob []byte
			var retired *time.Time
			if err := rows.Scan(&blob, &retired); err != nil {
				return err
			}
			a := &patchingv1.Asset{}
			if err := proto.Unmarshal(blob, a); err != nil {
				return err
			}
			ia := &patchingv1.InventoryAsset{Asset: a, ContractId: contractID}
			if retired != nil {
				ia.RetiredAt = timestamppb.New(*retired)
			}
			out = append(out, ia)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, "", fmt.Errorf("list assets: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[size-1].GetAsset().GetAssetId()))
	}
	return out, next, nil
}

func remediations(ctx context.Context, pool *pgxpool.Pool, org domain.OrgID, sql string, args ...any) ([]domain.Remediation, error) {
	return pgdb.ReadJSONAs[domain.Remediation](ctx, pool, readmodel.Schema, string(org), sql, args...)
}

// A register page token is the sort key of the last row handed out: its
// due date ("infinity" for none) and id.
func decodeToken(token string) (*string, string, error) {
	if token == "" {
		return nil, "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(token)
	if err != nil {
		return nil, "", ErrBadPageToken
	}
	due, id, ok := strings.Cut(string(b), "|")
	if _, perr := time.Parse(time.RFC3339Nano, due); !ok || id == "" || (perr != nil && due != "infinity") {
		return nil, "", ErrBadPageToken
	}
	return &due, id, nil
}
