package auth

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
)

// Gate authenticates and authorizes a call from its procedure and headers
// alone. The host runs it as HTTP middleware in front of the Connect
// handlers, so an unauthenticated caller is turned away before any of its
// body is read; the interceptor runs the same checks for handlers served
// without that middleware, and trusts a context the gate already passed.
type Gate struct {
	verifier *Verifier
	policy   Policy
}

// NewGate returns a gate that checks tokens with v against policy. It panics
// if v is nil.
func NewGate(v *Verifier, policy Policy) *Gate {
	if v == nil {
		panic("auth: NewGate needs a verifier")
	}
	return &Gate{verifier: v, policy: policy.Merge()}
}

// Knows reports whether the policy lists procedure (a path like
// "/jsm.contracts.v1.ContractService/SignContract").
func (g *Gate) Knows(procedure string) bool {
	_, ok := g.policy.Permission(procedure)
	return ok
}

type authorizedKey struct{}

// Authorize returns ctx with the caller's principal, or a Connect error
// (PermissionDenied for a procedure the policy does not list or the roles
// do not grant, Unauthenticated for a missing or refused token).
func (g *Gate) Authorize(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	if authorized, _ := ctx.Value(authorizedKey{}).(string); authorized == procedure {
		return ctx, nil
	}
	perm, ok := g.policy.Permission(procedure)
	if !ok || perm == "" {
		return ctx, connect.NewError(connect.CodePermissionDenied, errors.New("procedure not allowed"))
	}
	if perm != Public {
		token, err := bearer(h)
		if err != nil {
			return ctx, unauthenticated(err.Error())
		}
		p, err := g.verifier.Verify(token)
		if err != nil {
			msg := "invalid token"
			if te, ok := errors.AsType[*TokenError](err); ok {
				msg = te.Reason
			}
			return ctx, unauthenticated(msg)
		}
		if !g.policy.Allows(p.Roles, perm) {
			return ctx, connect.NewError(connect.CodePermissionDenied,
				fmt.Errorf("permission %q required", perm))
		}
		ctx = WithPrincipal(ctx, p)
	}
	// Only this procedure: a context handed on to another call is checked again.
	return context.WithValue(ctx, authorizedKey{}, procedure), nil
}
