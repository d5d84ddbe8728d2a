package ingest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/jsmplatform/jsm/libs/cursor"
	"github.com/jsmplatform/jsm/libs/decide"
	"github.com/jsmplatform/jsm/libs/pgdb"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
)

const defaultPageSize = 100

func pageSize(n int32) int {
	if n <= 0 {
		return defaultPageSize
	}
	return int(n)
}

func isNotFound(err error) bool { return errors.Is(err, domain.NotFoundError{What: "source"}) }

func (s *Sources) getSource(ctx context.Context, org, id string, minPosition uint64) (domain.State, error) {
	if err := s.projector.WaitFor(ctx, minPosition, s.d.ReadWait); err != nil {
		return domain.State{}, err
	}
	states, err := pgdb.ReadJSONAs[domain.State](ctx, s.d.Pool, Schema, org, `SELECT state FROM ingest.sources WHERE source_id = $1 AND org_id = $2`, id, org)
	if err != nil {
		return domain.State{}, err
	}
	if len(states) == 0 {
		return domain.State{}, domain.NotFoundError{What: "source", ID: id}
	}
	return states[0], nil
}

// listSources reads the org's sources, oldest first.
func (s *Sources) listSources(ctx context.Context, org string, size int, token string, minPosition uint64) ([]domain.State, string, error) {
	if err := s.projector.WaitFor(ctx, minPosition, s.d.ReadWait); err != nil {
		return nil, "", err
	}
	after, afterID, err := cursor.Decode(token)
	if err != nil {
		return nil, "", decide.Invalid("page_token", "%v", err)
	}
	var out []domain.State
	err = pgdb.ReadAs(ctx, s.d.Pool, Schema, org, `
		SELECT state FROM ingest.sources
		WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (registered_at, source_id) > ($2, $3))
		ORDER BY registered_at, source_id LIMIT $4`,
		[]any{org, after, afterID, size + 1}, func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.State, error) {
				var raw []byte
				if err := r.Scan(&raw); err != nil {
					return domain.State{}, err
				}
				var st domain.State
				return st, json.Unmarshal(raw, &st)
			})
			return err
		})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		last := out[size-1]
		next = cursor.Encode(last.RegisteredAt, string(last.ID))
	}
	return out, next, nil
}

// queryEvents reads the org's inbox in the order it was received, newest
// last, optionally of one source and one outcome.
func (s *Sources) queryEvents(ctx context.Context, org, source string, outcome integrationv1.IngestOutcome, size int, token string, minPosition uint64) ([]Result, string, error) {
	if err := s.projector.WaitFor(ctx, minPosition, s.d.ReadWait); err != nil {
		return nil, "", err
	}
	after := int64(0)
	if token != "" {
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err == nil {
			after, err = strconv.ParseInt(string(b), 10, 64)
		}
		if err != nil || after < 0 {
			return nil, "", decide.Invalid("page_token", "not a token of this list")
		}
	}
	var out []Result
	err := pgdb.ReadAs(ctx, s.d.Pool, Schema, org, `
		SELECT `+inboxRead+` FROM ingest.events
		WHERE org_id = $1 AND seq > $2 AND ($3 = '' OR source_id = $3) AND ($4 = 0 OR outcome = $4)
		ORDER BY seq LIMIT $5`,
		[]any{org, after, source, int16(outcome), size + 1}, func(rows pgx.Rows) error {
			var err error
			out, err = pgx.CollectRows(rows, scanResult)
			return err
		})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(out[size-1].seq, 10)))
	}
	return out, next, nil
}
