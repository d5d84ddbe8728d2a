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
)

// EmbeddedConfig configures an in-process JetStream server.
type EmbeddedConfig struct {
	StoreDir string
	Host     string // default 127.0.0.1
	Port     int    // -1 picks a free port; 0 means the default 4222
	// SyncAlways fsyncs every write (sync_interval: always); slow, survives power loss.
	SyncAlways bool
	ServerName string
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

// Connect opens a client connection that keeps reconnecting (a restart of
// the server must not kill the services) and logs state changes. A server
// not up yet is no error either: the connection keeps trying in the
// background (RetryOnFailedConnect), and whoever needs it waits until
// IsConnected (see package startup). Only a malformed URL fails here.
func Connect(url, name string, log *slog.Logger) (*nats.Conn, error) {
	if log == nil {
		log = slog.Default()
	}
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ConnectHandler(func(c *nats.Conn) { log.Info("nats connected", "url", c.ConnectedUrl()) }),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("nats reconnected", "url", c.ConnectedUrl()) }),
	)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
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
