package main

import (
	"os"
	"path/filepath"
	"testing"
)

// `jsm trail export --out` leaves a file only its owner can read, also over
// a file that was readable by all.
func TestExportFileIsPrivate(t *testing.T) {
	dir := t.TempDir()
	fresh, existing := filepath.Join(dir, "fresh.json"), filepath.Join(dir, "existing.json")
	if err := os.WriteFile(existing, []byte("an older, longer export"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fresh, existing} {
		if err := writePrivateFile(path, []byte("{}")); err != nil {
			t.Fatal(err)
		}
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(path), perm)
		}
		if data, _ := os.ReadFile(path); string(data) != "{}" {
			t.Errorf("%s holds %q", filepath.Base(path), data)
		}
	}
}
