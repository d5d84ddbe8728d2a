package pgdb

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ReadJSONAs runs, like ReadAs, one query on behalf of org whose rows are
// one JSON column each (a read model's stored state), and decodes them.
func ReadJSONAs[T any](ctx context.Context, pool *pgxpool.Pool, schema, org string, sql string, args ...any) ([]T, error) {
	var out []T
	err := ReadAs(ctx, pool, schema, org, sql, args, func(rows pgx.Rows) error {
		for rows.Next() {
			var raw []byte
			if err := rows.Scan(&raw); err != nil {
				return err
			}
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("stored state: %w", err)
			}
			out = append(out, v)
		}
		return rows.Err()
	})
	return out, err
}
