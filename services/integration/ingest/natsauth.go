package ingest

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

// NATSAuth lets sources publish on NATS as themselves. The server hands
// every client that is not a user of natsauth's table to the auth callout;
// the integration service answers it: user = source id, password = the
// source's secret (the previous one during the rotation grace, until its
// end) gives a user that may publish only jsm.ingest.<source>.>. Disabling
// a source or rotating its secret disconnects its connections, which must
// then authenticate again.
type NATSAuth struct {
	// Issuer signs the callout's answers: the account key whose public key
	// the server's auth_callout trusts (natsauth.Secrets.CalloutSeed).
	Issuer nkeys.KeyPair
	// System is a connection of natsauth.SystemUser, to find and disconnect
	// a source's connections on every server; without it a disabled source
	// keeps a connection it already has.
	System *nats.Conn
}

// serveCallout answers the auth callout on the service's own connection
// until ctx ends.
func (s *Sources) serveCallout(ctx context.Context) error {
	sub, err := s.d.Store.Conn().Subscribe(natsauth.CalloutSubject, func(m *nats.Msg) {
		token, err := s.authorize(ctx, m.Data)
		if err != nil {
			s.d.Logger.Warn("nats auth callout", "err", err)
			return
		}
		if err := m.Respond([]byte(token)); err != nil {
			s.d.Logger.Warn("nats auth callout: respond", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("nats auth callout: %w", err)
	}
	<-ctx.Done()
	_ = sub.Unsubscribe()
	return nil
}

// authorize decodes a callout request and returns the signed answer: a
// user for the source, or the reason it is refused.
func (s *Sources) authorize(ctx context.Context, data []byte) (string, error) {
	req, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		return "", fmt.Errorf("decode request: %w", err)
	}
	res := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	res.Audience = req.Server.ID
	user, err := s.sourceUser(ctx, req)
	if err != nil {
		res.Error = err.Error()
	} else if res.Jwt, err = user.Encode(s.d.NATSAuth.Issuer); err != nil {
		return "", fmt.Errorf("sign user: %w", err)
	}
	return res.Encode(s.d.NATSAuth.Issuer)
}

// sourceUser is the NATS user of the source a request authenticates as.
func (s *Sources) sourceUser(ctx context.Context, req *jwt.AuthorizationRequestClaims) (*jwt.UserClaims, error) {
	id, password := req.ConnectOptions.Username, req.ConnectOptions.Password
	src, err := s.source(ctx, id)
	if err != nil {
		return nil, errors.New("source unavailable, try again")
	}
	if tableUser(id) || !src.Exists() || !src.Enabled || password == "" {
		return nil, errUnauthenticated
	}
	now := s.d.Now()
	if _, err := s.authenticateHeaders(src, http.Header{"Authorization": {"Bearer " + password}}, now); err != nil {
		return nil, errUnauthenticated
	}
	identity := natsauth.Source(id)
	u := jwt.NewUserClaims(req.UserNkey)
	u.Name = identity.User
	u.Audience = identity.Account
	u.Pub.Allow.Add(identity.Publish...)
	u.Sub.Allow.Add(identity.Subscribe...)
	u.Limits.NatsLimits.Payload = MaxEventBytes
	if !hmac.Equal([]byte(password), []byte(s.d.Keys.Derive(secret.ForSource, id, src.SecretVersion))) {
		// The previous secret: the connection ends with its grace.
		u.Expires = src.PreviousUntil(s.d.Limits.RotationGrace).Unix()
	}
	return u, nil
}

// kick disconnects every NATS connection of the source id (the server
// names them by the user the callout gave them), on every server, so that it must authenticate again (and a disabled source
// cannot). It waits for the servers' answers for up to a second.
func (s *Sources) kick(ctx context.Context, id string) error {
	if s.d.NATSAuth == nil || s.d.NATSAuth.System == nil {
		return nil
	}
	nc := s.d.NATSAuth.System
	inbox := nc.NewInbox()
	replies := make(chan *nats.Msg, 64)
	sub, err := nc.ChanSubscribe(inbox, replies)
	if err != nil {
		return fmt.Errorf("kick %s: %w", id, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	q, _ := json.Marshal(server.ConnzEventOptions{ConnzOptions: server.ConnzOptions{User: natsauth.Source(id).User, Username: true, Limit: 1 << 16}})
	if err := nc.PublishRequest("$SYS.REQ.SERVER.PING.CONNZ", inbox, q); err != nil {
		return fmt.Errorf("kick %s: %w", id, err)
	}
	wait := time.NewTimer(time.Second)
	defer wait.Stop()
	var errs []error
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wait.C:
			return errors.Join(errs...)
		case m := <-replies:
			errs = append(errs, s.kickOn(ctx, nc, m.Data, id))
		}
	}
}

// kickOn disconnects the source's connections that one server listed.
func (s *Sources) kickOn(ctx context.Context, nc *nats.Conn, data []byte, id string) error {
	var res struct {
		Server server.ServerInfo `json:"server"`
		Data   server.Connz      `json:"data"`
	}
	if err := json.Unmarshal(data, &res); err != nil {
		return fmt.Errorf("kick %s: connz: %w", id, err)
	}
	for _, c := range res.Data.Conns {
		req, _ := json.Marshal(server.KickClientReq{CID: c.Cid})
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := nc.RequestWithContext(rctx, "$SYS.REQ.SERVER."+res.Server.ID+".KICK", req)
		cancel()
		if err != nil {
			return fmt.Errorf("kick %s on %s: %w", id, res.Server.Name, err)
		}
		s.d.Logger.Info("source disconnected from nats", slog.String("source", id), slog.String("server", res.Server.Name), slog.Uint64("cid", c.Cid))
	}
	return nil
}

// tableUser reports whether id names a user of natsauth's table: the
// server authenticates those itself, and a source registered under such a
// name never gets a NATS identity.
func tableUser(id string) bool {
	for _, u := range natsauth.All() {
		if u.User == id {
			return true
		}
	}
	return false
}
