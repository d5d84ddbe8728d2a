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
