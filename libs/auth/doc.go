// Package auth authenticates and authorizes callers of JSM's Connect APIs.
//
// Callers present a bearer JWT. A [Verifier] checks its signature (EdDSA by
// default, keys given or fetched from a JWKS endpoint), issuer, audience and
// lifetime, and turns its claims into a [Principal]: the org, the user and
// the roles. The interceptor built by [NewInterceptor] denies by default: a
// [Policy] maps every procedure to the [Permission] it requires and every role
// to the permissions it grants, and anything not listed is refused.
//
// In development, `jsm up` signs tokens with a local key kept on disk
// ([LoadOrCreateDevKey], [Mint]).
package auth
