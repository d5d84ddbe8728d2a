package auth

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"connectrpc.com/connect"
)

// NewInterceptor returns the server-side interceptor that authenticates and
// authorizes every call against policy, denying by default:
//
//   - a procedure policy does not list is refused (PermissionDenied);
//   - a Public procedure passes without a token;
//   - otherwise the "Authorization: Bearer <jwt>" header must hold a token v
//     accepts (else Unauthenticated), and one of the principal's roles must
//     grant the procedure's permission (else PermissionDenied).
//
// On success the handler finds the Principal with FromContext. Client-side
// calls pass through unchanged. It panics if v is nil.
func NewInterceptor(v *Verifier, policy Policy) connect.Interceptor {
	if v == nil {
		panic("auth: NewInterceptor needs a verifier")
	}
	return &interceptor{gate: NewGate(v, policy)}
}

type interceptor struct {
	gate *Gate
}

func (i *interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		if req.Spec().IsClient {
			return next(ctx, req)
		}
		ctx, err := i.authorize(ctx, req.Spec().Procedure, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i *interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i *interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.authorize(ctx, conn.Spec().Procedure, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}

// authorize returns ctx with the caller's principal, or a Connect error.
func (i *interceptor) authorize(ctx context.Context, procedure string, h http.Header) (context.Context, error) {
	return i.gate.Authorize(ctx, procedure, h)
}

// bearer returns the token of the request's one Authorization header.
func bearer(h http.Header) (string, error) {
	values := h.Values("Authorization")
	switch len(values) {
	case 0:
		return "", errors.New("missing bearer token")
	case 1:
	default:
		return "", errors.New("malformed authorization header")
	}
	scheme, token, ok := strings.Cut(values[0], " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", errors.New("malformed authorization header: want Bearer token")
	}
	return token, nil
}

func unauthenticated(msg string) *connect.Error {
	err := connect.NewError(connect.CodeUnauthenticated, errors.New(msg))
	err.Meta().Set("WWW-Authenticate", `Bearer realm="jsm"`)
	return err
}
