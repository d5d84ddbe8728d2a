package trail_test

import (
	"strings"
	"testing"

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
