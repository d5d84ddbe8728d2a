package auth_test

import (
	"slices"
	"testing"

	"github.com/jsmplatform/jsm/libs/auth"
)

func TestPolicyMerge(t *testing.T) {
	t.Parallel()
	a := auth.Policy{
		Procedures: map[string]auth.Permission{"/a.A/X": "a.x", "/h.H/Check": auth.Public},
		Roles:      map[string][]auth.Permission{"admin": {"a.x"}},
	}
	b := auth.Policy{
		Procedures: map[string]auth.Permission{"/b.B/Y": "b.y", "/h.H/Check": auth.Public},
		Roles:      map[string][]auth.Permission{"admin": {"b.y", "a.x"}, "viewer": {"b.y"}},
	}
	m := a.Merge(b)
	if len(m.Procedures) != 3 {
		t.Fatalf("procedures %v", m.Procedures)
	}
	if got := m.Roles["admin"]; !slices.Equal(got, []auth.Permission{"a.x", "b.y"}) {
		t.Fatalf("admin grants %v", got)
	}
	if !m.Allows([]string{"admin"}, "a.x") || !m.Allows([]string{"viewer"}, "b.y") || m.Allows([]string{"viewer"}, "a.x") {
		t.Fatal("merged policy grants the wrong permissions")
	}
	if !m.Allows(nil, auth.Public) || m.Allows([]string{"admin"}, "") {
		t.Fatal("Public must be allowed to all, the empty permission to none")
	}
	// Merging copies: changing the result leaves the inputs alone.
	m.Roles["admin"][0] = "changed"
	if a.Roles["admin"][0] != "a.x" {
		t.Fatal("Merge shares slices with its inputs")
	}

	defer func() {
		if recover() == nil {
			t.Fatal("conflicting permissions for one procedure did not panic")
		}
	}()
	a.Merge(auth.Policy{Procedures: map[string]auth.Permission{"/a.A/X": "other"}})
}
