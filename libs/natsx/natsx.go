// Package natsx runs an embedded NATS JetStream server and connects to NATS.
package natsx

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/natsauth"
)

// EmbeddedConfig configures an in-process JetStream server.
type EmbeddedConfig struct {
	StoreDir string
	Host     string // default 127.0.0.1
	Port     int    // -1 picks a free port; 0 means the default 4222
	// SyncAlways fsyncs every write (sync_interval: always); slow, survives power loss.
	SyncAlways bool
	ServerName string
	// Auth, when set, turns on the users of natsauth's table and the auth
	// callout for everyone else; without it the server is open (tests).
	Auth *natsauth.Secrets
}

// RunEmbedded starts a JetStream server in this process and waits until it
// accepts connections.
func RunEmbedded(cfg EmbeddedConfig) (*server.Server, error) {
	if cfg.StoreDir == "" {
		return nil, errors.New("embedded nats: store dir required")
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	opts := &server.Options{
		ServerName: cfg.ServerName,
		Host:       cfg.Host,
		Port:       cfg.Port,
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true,
		NoLog:      true,
		// Events and snapshots up to 8 MiB (NATS's recommended ceiling): a
		// remediation of a large inventory lists tens of thousands of asset
		// ids in one event and one snapshot. Documents belong in object storage.
		MaxPayload: 8 << 20,
	}
	if cfg.SyncAlways {
		opts.SyncAlways = true
	}
	if cfg.Auth != nil {
		if err := cfg.Auth.Apply(opts); err != nil {
			return nil, fmt.Errorf("embedded nats: %w", err)
		}
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("embedded nats: not ready after 10s")
	}
	return s, nil
}

// Credentials are who a client is on NATS: a user of natsauth's table
// with its password, and the CA that signed the server's certificate when
// the server speaks TLS.
type Credentials struct {
	User, Password string
	// CAFile is a PEM file of the CA to trust; with it the client requires TLS.
	CAFile string
	// CertFile and KeyFile are a client certificate, for servers that verify clients.
	CertFile, KeyFile string
}

// Options are the nats.go options of c: the user, its own inbox prefix
// (the only replies its permissions let it read) and TLS.
func (c Credentials) Options() []nats.Option {
	var opts []nats.Option
	if c.User != "" {
		opts = append(opts, nats.UserInfo(c.User, c.Password), nats.CustomInboxPrefix(natsauth.InboxPrefix(c.User)))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	if c.CertFile != "" || c.KeyFile != "" {
		opts = append(opts, nats.ClientCert(c.CertFile, c.KeyFile))
	}
	return opts
}

// Connect opens a client connection that keeps reconnecting (a restart of
// the server must not kill the services) and logs state changes. A server
// not up yet is no error either: the connection keeps trying in the
// background (RetryOnFailedConnect), and whoever needs it waits until
// IsConnected (see package startup). Only a malformed URL fails here.
// opts come last (Credentials.Options).
func Connect(url, name string, log *slog.Logger, opts ...nats.Option) (*nats.Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	nc, err := nats.Connect(url, append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ConnectHandler(func(c *nats.Conn) { log.Info("nats connected", "url", c.ConnectedUrl()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
}

// Another opens a second connection like nc (same servers, user, inbox
// prefix and TLS) named name, for a library that takes a connection of
// its own and closes it.
func Another(nc *nats.Conn, name string) (*nats.Conn, error) {
	o := nc.Opts
	o.Name = name
	o.Url = ""
	o.Servers = nc.Servers()
	o.MaxReconnect = -1
	c, err := o.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect nats: %w", err)
	}
	return c, nil
}

// As opens a connection like nc (same servers and TLS) as another user,
// with that user's inbox prefix.
func As(nc *nats.Conn, name, user, password string) (*nats.Conn, error) {
	o := nc.Opts
	o.Name, o.Url, o.Servers, o.MaxReconnect = name, "", nc.Servers(), -1
	o.User, o.Password, o.InboxPrefix = user, password, natsauth.InboxPrefix(user)
	c, err := o.Connect()
	if err != nil {
		return nil, fmt.Errorf("connect nats as %s: %w", user, err)
	}
	return c, nil
}

// Shutdown stops an embedded server and waits until it is down.
func Shutdown(ctx context.Context, s *server.Server) {
	done := make(chan struct{})
	go func() {
		s.Shutdown()
		s.WaitForShutdown()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}
