package auth

import (
	"context"
	"slices"
)

// Principal is the authenticated caller of a request.
type Principal struct {
	Org   string   // the organisation the caller acts for ("org" claim)
	User  string   // the user ("sub" claim)
	Roles []string // the caller's roles in Org ("roles" claim)
	// Contracts, when not nil, are the only contracts the caller may act
	// on: a machine issuer's token names them (a source acts on the
	// contracts it was registered for). Nil for a user: any contract of Org.
	Contracts []string
}

// MayActOn reports whether the principal may act on contract.
func (p Principal) MayActOn(contract string) bool {
	return p.Contracts == nil || slices.Contains(p.Contracts, contract)
}

// clone is p with lists of its own.
func (p Principal) clone() Principal {
	p.Roles = slices.Clone(p.Roles)
	if p.Contracts != nil {
		p.Contracts = append([]string{}, p.Contracts...)
	}
	return p
}

// HasRole reports whether the principal holds role r.
func (p Principal) HasRole(r string) bool {
	return slices.Contains(p.Roles, r)
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal that the interceptor put in ctx, and
// false if there is none (a public procedure, or no interceptor).
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}
