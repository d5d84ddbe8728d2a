package app

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/services/trail/projection"
)

// Filter selects events; zero fields match everything.
type Filter struct {
	Contract      string
	Org           string // a party of the event's contract
	ActorOrg      string
	Actor         string
	Type          string
	AggregateType string
	AggregateID   string
	Correlation   string
	From, To      time.Time // [From, To)
	FromPosition  uint64    // inclusive
}

// Map names the filter's set fields, for an export's header.
func (f Filter) Map() map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set("contract_id", f.Contract)
	set("org_id", f.Org)
	set("actor_org_id", f.ActorOrg)
	set("actor", f.Actor)
	set("type", f.Type)
	set("aggregate_type", f.AggregateType)
	set("aggregate_id", f.AggregateID)
	set("correlation_id", f.Correlation)
	if !f.From.IsZero() {
		m["from_time"] = f.From.UTC().Format(time.RFC3339Nano)
	}
	if !f.To.IsZero() {
		m["to_time"] = f.To.UTC().Format(time.RFC3339Nano)
	}
	if f.FromPosition > 0 {
		m["from_position"] = strconv.FormatUint(f.FromPosition, 10)
	}
	return m
}

// query builds the SQL of a page of org's events matching f after position
// after. The org's own condition is always there (the indexes need it);
// row-level security backs it up.
func (f Filter) query(org string, after uint64, limit int) (string, []any) {
	args := []any{org, int64(max(after, f.FromPosition-min(f.FromPosition, 1)))}
	var b strings.Builder
	b.WriteString(`SELECT ` + strings.Join(projection.Columns, ", ") + ` FROM trail.entries
		WHERE (customer_org_id = $1 OR provider_org_id = $1) AND position > $2`)
	add := func(cond string, v any) {
		args = append(args, v)
		fmt.Fprintf(&b, " AND "+cond, len(args))
	}
	for _, c := range []struct {
		cond, v string
	}{
		{"contract_id = $%d", f.Contract},
		{"$%d IN (customer_org_id, provider_org_id)", f.Org},
		{"actor_org_id = $%d", f.ActorOrg},
		{"actor = $%d", f.Actor},
		{"type = $%d", f.Type},
		{"aggregate_type = $%d", f.AggregateType},
		{"aggregate_id = $%d", f.AggregateID},
		{"correlation_id = $%d", f.Correlation},
	} {
		if c.v != "" {
			add(c.cond, c.v)
		}
	}
	if !f.From.IsZero() {
		add("time >= $%d", f.From)
	}
	if !f.To.IsZero() {
		add("time < $%d", f.To)
	}
	args = append(args, limit)
	fmt.Fprintf(&b, " ORDER BY position LIMIT $%d", len(args))
	return b.String(), args
}

// rows runs a query of entries on behalf of org.
func (a *App) rows(ctx context.Context, org, sql string, args []any) ([]projection.Row, error) {
	var out []projection.Row
	err := pgdb.ReadAs(ctx, a.Pool, projection.Schema, org, sql, args, func(rows pgx.Rows) error {
		for rows.Next() {
			r, err := projection.Scan(rows)
			if err != nil {
				return err
			}
			out = append(out, r)
		}
		return rows.Err()
	})
	return out, err
}

// DefaultPageSize applies when a search asks for no size.
const DefaultPageSize = 100

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = fmt.Errorf("%w: page_token is not a token from an earlier page", ErrInvalid)

// Search returns a page of org's events matching f, in stream order.
func (a *App) Search(ctx context.Context, org string, f Filter, size int, token string, minPosition uint64) ([]projection.Row, string, error) {
	if err := a.wait(ctx, minPosition); err != nil {
		return nil, "", err
	}
	var after uint64
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(b) != 8 {
			return nil, "", ErrBadPageToken
		}
		after = binary.BigEndian.Uint64(b)
	}
	if size <= 0 {
		size = DefaultPageSize
	}
	sql, args := f.query(org, after, size+1)
	out, err := a.rows(ctx, org, sql, args)
	if err != nil {
		return nil, "", fmt.Errorf("search events: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = base64.RawURLEncoding.EncodeToString(binary.BigEndian.AppendUint64(nil, out[size-1].Event.Position))
	}
	return out, next, nil
}

// replayPage is how many events a replay reads per query.
const replayPage = 1000

// Replay calls send with org's events matching f in stream order, a page
// at a time, up to the end of the trail as it grows while the replay runs.
func (a *App) Replay(ctx context.Context, org string, f Filter, minPosition uint64, send func([]projection.Row) error) error {
	if err := a.wait(ctx, minPosition); err != nil {
		return err
	}
	var after uint64
	for {
		sql, args := f.query(org, after, replayPage)
		page, err := a.rows(ctx, org, sql, args)
		if err != nil {
			return fmt.Errorf("replay events: %w", err)
		}
		if len(page) > 0 {
			if err := send(page); err != nil {
				return err
			}
		}
		if len(page) < replayPage {
			return nil
		}
		after = page[len(page)-1].Event.Position
	}
}
