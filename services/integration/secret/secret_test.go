package secret_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/jsmplatform/jsm/services/integration/secret"
)

func TestDerive(t *testing.T) {
	k, err := secret.New(bytes.Repeat([]byte{7}, secret.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s := k.Derive(secret.ForSource, "servicenow-prod", 1)
	if !strings.HasPrefix(s, "whsec_") {
		t.Fatalf("secret %q lacks the whsec_ prefix", s)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if err != nil || len(raw) != 32 || !bytes.Equal(raw, k.Raw(secret.ForSource, "servicenow-prod", 1)) {
		t.Fatalf("secret %q does not carry the 32 raw key bytes", s)
	}
	if s != k.Derive(secret.ForSource, "servicenow-prod", 1) {
		t.Fatal("derivation is not stable")
	}
	for _, other := range []string{
		k.Derive(secret.ForSource, "servicenow-prod", 2),
		k.Derive(secret.ForSubscription, "servicenow-prod", 1),
		k.Derive(secret.ForSource, "servicenow-test", 1),
	} {
		if other == s {
			t.Fatal("a rotation, another purpose or another id gave the same secret")
		}
	}
	if !k.Equal(s, secret.ForSource, "servicenow-prod", 1) || k.Equal(s, secret.ForSource, "servicenow-prod", 2) {
		t.Fatal("Equal does not tell the versions apart")
	}
	if _, err := secret.New([]byte("short")); err == nil {
		t.Fatal("a short master key was accepted")
	}
}

func TestLoadOrCreateKeepsTheKey(t *testing.T) {
	dir := t.TempDir()
	a, err := secret.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := secret.LoadOrCreate(dir)
	if err != nil {
		t.Fatal(err)
	}
	if a.Derive(secret.ForSource, "x", 1) != b.Derive(secret.ForSource, "x", 1) {
		t.Fatal("the second start derived other secrets")
	}
}
