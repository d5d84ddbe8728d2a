package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// sqlTimes adds up the time of each SQL statement a pool runs, from the
// call to the end of its result (for a Query, until the rows are closed, so
// the caller's scanning counts too).
type sqlTimes struct {
	mu    sync.Mutex
	stats map[string]*sqlStat
}

type sqlStat struct {
	n     int
	total time.Duration
}

type sqlStartKey struct{}

type sqlStart struct {
	sql string
	at  time.Time
}

func (t *sqlTimes) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	return context.WithValue(ctx, sqlStartKey{}, sqlStart{sql: d.SQL, at: time.Now()})
}

func (t *sqlTimes) TraceQueryEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryEndData) {
	t.end(ctx)
}

// TraceBatchStart times a batch as one statement named after its first query.
func (t *sqlTimes) TraceBatchStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceBatchStartData) context.Context {
	sql := "batch"
	if d.Batch != nil && d.Batch.Len() > 0 {
		sql = fmt.Sprintf("batch of %d: %s", d.Batch.Len(), d.Batch.QueuedQueries[0].SQL)
	}
	return context.WithValue(ctx, sqlStartKey{}, sqlStart{sql: sql, at: time.Now()})
}

func (t *sqlTimes) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}

func (t *sqlTimes) TraceBatchEnd(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchEndData) {
	t.end(ctx)
}

func (t *sqlTimes) end(ctx context.Context) {
	s, ok := ctx.Value(sqlStartKey{}).(sqlStart)
	if !ok {
		return
	}
	took := time.Since(s.at)
	key := strings.Join(strings.Fields(s.sql), " ")
	if len(key) > 60 {
		key = key[:60] + "..."
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	st := t.stats[key]
	if st == nil {
		st = &sqlStat{}
		t.stats[key] = st
	}
	st.n++
	st.total += took
}

// report logs the statements by total time, each with its share of wall.
func (t *sqlTimes) report(b *testing.B, wall time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := make([]string, 0, len(t.stats))
	var sum time.Duration
	for k, st := range t.stats {
		keys = append(keys, k)
		sum += st.total
	}
	slices.SortFunc(keys, func(a, c string) int { return int(t.stats[c].total - t.stats[a].total) })
	var sb strings.Builder
	fmt.Fprintf(&sb, "SQL time %v of %v wall (%.0f%%):", sum.Round(time.Millisecond), wall.Round(time.Millisecond), 100*sum.Seconds()/wall.Seconds())
	for _, k := range keys {
		st := t.stats[k]
		fmt.Fprintf(&sb, "\n  %7.1f ms %5.1f%%  %6d x %8.1f µs  %s", float64(st.total.Microseconds())/1000, 100*st.total.Seconds()/wall.Seconds(), st.n, micros(st.total)/float64(st.n), k)
	}
	b.Log(sb.String())
}

// tracedPool opens another pool to pool's database whose statements t times.
func tracedPool(b *testing.B, pool *pgxpool.Pool) (*pgxpool.Pool, *sqlTimes) {
	b.Helper()
	t := &sqlTimes{stats: map[string]*sqlStat{}}
	cfg := pool.Config().Copy()
	cfg.ConnConfig.Tracer = t
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Close)
	return p, t
}
