package trail_test

import (
	"strings"
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/testkit"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/services/trail"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

func TestOriginFromURL(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://jsm.example.com", "jsm.example.com/trail"},
		{"https://jsm.example.com/", "jsm.example.com/trail"},
		{"https://JSM.Example.com:8443/jsm/", "jsm.example.com:8443/jsm/trail"},
		{"http://10.0.0.1/a/b", "10.0.0.1/a/b/trail"},
		{"jsm.example.com", ""},
		{"ftp://jsm.example.com", ""},
		{"https://", ""},
		{"https://jsm.example.com/a+b", ""},
	} {
		got, err := trail.OriginFromURL(tc.url)
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("OriginFromURL(%q) = %q, %v; want %q", tc.url, got, err, tc.want)
		}
	}
}

func TestParseWitnesses(t *testing.T) {
	// A cosignature/v1 key of the public key 00 01 .. 1f.
	const key = "witness.example.org+eaed67a5+BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f"
	for _, tc := range []struct {
		list string
		want int
		ok   bool
	}{
		{"", 0, true},
		{"https://w.example.org " + key, 1, true},
		{" https://w.example.org/ " + key + " ,\n", 1, true},
		{"https://w.example.org " + key + ",https://w2.example.org " + key, 0, false}, // the same key twice
		{"https://w.example.org", 0, false},
		{key + " https://w.example.org", 0, false},
		{"w.example.org " + key, 0, false},
		{"https://w.example.org witness.example.org+00000000+AAAA", 0, false},
	} {
		got, err := trail.ParseWitnesses(tc.list)
		if (err == nil) != tc.ok || len(got) != tc.want {
			t.Errorf("ParseWitnesses(%q) = %v, %v", tc.list, got, err)
		}
	}
}

func TestFromEnvOrigin(t *testing.T) {
	origin := func(t *testing.T, dir string) string {
		t.Helper()
		d, err := trail.FromEnv(trail.Deps{}, dir)
		if err != nil {
			t.Fatal(err)
		}
		s, err := ledger.NewSignerFor(d.SigningKey, d.Origin)
		if err != nil {
			t.Fatal(err)
		}
		return s.Name()
	}
	t.Run("random, kept with the key", func(t *testing.T) {
		dir := t.TempDir()
		first := origin(t, dir)
		if !strings.HasPrefix(first, "jsm-trail/") || len(first) < len("jsm-trail/")+20 {
			t.Fatalf("origin %q", first)
		}
		if again := origin(t, dir); again != first {
			t.Fatalf("origin %q, then %q", first, again)
		}
		if other := origin(t, t.TempDir()); other == first {
			t.Fatalf("two deployments share origin %q", first)
		}
	})
	t.Run("from the public URL", func(t *testing.T) {
		t.Setenv("JSM_PUBLIC_URL", "https://jsm.example.com/")
		if got := origin(t, t.TempDir()); got != "jsm.example.com/trail" {
			t.Fatalf("origin %q", got)
		}
	})
	t.Run("configured, over the key's name", func(t *testing.T) {
		dir := t.TempDir()
		first := origin(t, dir)
		t.Setenv("JSM_PUBLIC_URL", "https://ignored.example.com")
		t.Setenv("JSM_TRAIL_ORIGIN", "jsm.example.org/audit")
		if got := origin(t, dir); got != "jsm.example.org/audit" || got == first {
			t.Fatalf("origin %q", got)
		}
		t.Setenv("JSM_TRAIL_ORIGIN", "has space")
		if _, err := trail.FromEnv(trail.Deps{}, dir); err == nil {
			t.Fatal("an invalid origin was accepted")
		}
	})
}

// TestOriginChangeKeepsCheckpointsVerifiable: after the origin changes, the
// latest checkpoint (signed under the old one) is served with the key that
// checks it, and the next one is signed under the new origin.
func TestOriginChangeKeepsCheckpointsVerifiable(t *testing.T) {
	skey, _, err := ledger.GenerateKey(trail.Origin)
	if err != nil {
		t.Fatal(err)
	}
	n := testkit.StartNATS(t)
	store, pool := n.Store(), testkit.PostgresPool(t)
	before, err := trail.New(trail.Deps{Store: store, Pool: pool, SigningKey: skey, ReadWait: 2 * time.Second, CheckpointEvery: 1000, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	old := checkpoint(t, serveTrail(t, before), appendDrafts(t, store, 2))

	after, err := trail.New(trail.Deps{Store: store, Pool: pool, SigningKey: skey, Origin: "jsm.example.com/trail", ReadWait: 2 * time.Second, CheckpointEvery: 1000, CheckpointInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	client := serveTrail(t, after)
	for _, tc := range []struct {
		r      *trailv1.GetCheckpointResponse
		origin string
		size   uint64
	}{
		{checkpoint(t, client, 0), trail.Origin, old.Size},
		{checkpoint(t, client, appendDrafts(t, store, 1)), "jsm.example.com/trail", old.Size + 1},
	} {
		c, err := ledger.OpenCheckpoint(tc.r.Checkpoint, tc.r.VerifierKey)
		if err != nil || c.Origin != tc.origin || tc.r.Origin != tc.origin || tc.r.Size != tc.size {
			t.Fatalf("checkpoint %v: %v, %v; want origin %s, size %d", tc.r, c, err, tc.origin, tc.size)
		}
	}
}
