package projection

import (
	"context"
	"testing"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/libs/testkit"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// Stored hashes are read from runs of any length, rows of one record (as
// the table held before runs) among them, and a missing run is missing.
func TestHashesInRuns(t *testing.T) {
	ctx := context.Background()
	pool := testkit.PostgresPool(t)
	if err := pgdb.Migrate(ctx, pool, Schema, Migrations(), nil); err != nil {
		t.Fatal(err)
	}
	const n = 300
	tree := ledger.NewAppender(0, ledger.Hashes{}, n)
	mem := ledger.Hashes{}
	for i := range int64(n) {
		leaf := tlog.RecordHash([]byte{byte(i), byte(i >> 8)})
		if _, err := tree.Append(leaf); err != nil {
			t.Fatal(err)
		}
		if _, err := mem.Append(i, leaf); err != nil {
			t.Fatal(err)
		}
	}
	// Records 0-9 one a row, 10-99 in runs of RunRecords from 10, the
	// rest in one batch's runs from 100.
	write := func(data []byte) {
		t.Helper()
		tx, err := pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		if err := copyFrom(ctx, tx, "hashes", []string{"first_record", "hashes"}, data); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for r := int64(0); r < 10; r++ {
		write(runs(r, r+1, tree.Added()[tlog.StoredHashIndex(0, r):], 1))
	}
	write(runs(10, 100, tree.Added()[tlog.StoredHashIndex(0, 10):], RunRecords))
	write(runs(100, n, tree.Added()[tlog.StoredHashIndex(0, 100):], RunRecords))
	var count int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM trail.hashes`).Scan(&count); err != nil || count != 10+4+7 {
		t.Fatalf("%d rows (%v), want 21", count, err)
	}
	all := make([]int64, tlog.StoredHashCount(n))
	for i := range all {
		all[i] = int64(i)
	}
	got, err := HashReader(ctx, pool).ReadHashes(all)
	if err != nil {
		t.Fatal(err)
	}
	for i, h := range got {
		if h != mem[int64(i)] {
			t.Fatalf("stored hash %d: %v, want %v", i, h, mem[int64(i)])
		}
	}
	want, _ := tlog.TreeHash(n, mem)
	if root, err := tlog.TreeHash(n, HashReader(ctx, pool)); err != nil || root != want {
		t.Fatalf("root %v (%v), want %v", root, err, want)
	}
	// Without the run of records 32 to 63, their hashes are missing, not
	// read from the run before.
	if _, err := pool.Exec(ctx, `ALTER TABLE trail.hashes DISABLE TRIGGER hashes_append_only; DELETE FROM trail.hashes WHERE first_record = 32`); err != nil {
		t.Fatal(err)
	}
	for _, r := range []int64{31, 32, 63, 64} {
		_, err := HashReader(ctx, pool).ReadHashes([]int64{tlog.StoredHashIndex(0, r)})
		if (err != nil) != (r == 32 || r == 63) {
			t.Fatalf("leaf %d after its run was deleted: %v", r, err)
		}
	}
}
