package auth

import (
	"fmt"
	"slices"
)

// Permission is what a procedure requires, e.g. "contracts.write".
type Permission string

// Public marks a procedure that needs no token (health checks, reflection).
const Public Permission = "public"

// Policy maps procedures to permissions and roles to the permissions they
// grant. Anything not listed is denied.
type Policy struct {
	// Procedures maps a full procedure ("/jsm.contracts.v1.ContractService/SignContract")
	// to the permission it requires.
	Procedures map[string]Permission
	// Roles maps a role name to the permissions it grants.
	Roles map[string][]Permission
}

// Permission returns the permission procedure requires, and false if the
// policy does not list it (which means the procedure is denied).
func (p Policy) Permission(procedure string) (Permission, bool) {
	perm, ok := p.Procedures[procedure]
	return perm, ok
}

// Allows reports whether any of roles grants perm. Public is allowed to
// everyone; an empty permission to no one.
func (p Policy) Allows(roles []string, perm Permission) bool {
	if perm == Public {
		return true
	}
	if perm == "" {
		return false
	}
	for _, r := range roles {
		if slices.Contains(p.Roles[r], perm) {
			return true
		}
	}
	return false
}

// Merge returns a new policy holding the procedures and roles of p and of
// others; the permissions of a role named in several policies add up. It is
// meant for start-up, when the host joins the policies of its services, and
// panics if two policies give one procedure different permissions: that is a
// programming error, and silently picking one would widen or narrow access.
func (p Policy) Merge(others ...Policy) Policy {
	out := Policy{
		Procedures: make(map[string]Permission),
		Roles:      make(map[string][]Permission),
	}
	for _, src := range append([]Policy{p}, others...) {
		for proc, perm := range src.Procedures {
			if prev, ok := out.Procedures[proc]; ok && prev != perm {
				panic(fmt.Sprintf("auth: procedure %s has two permissions: %q and %q", proc, prev, perm))
			}
			out.Procedures[proc] = perm
		}
		for role, perms := range src.Roles {
			for _, perm := range perms {
				if !slices.Contains(out.Roles[role], perm) {
					out.Roles[role] = append(out.Roles[role], perm)
				}
			}
		}
	}
	return out
}
