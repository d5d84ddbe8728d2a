package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Scope is what a piece of work is about, for its log lines: the contract
// and the org acting (the caller of an RPC, the actor of a handled event).
type Scope struct {
	Contract string
	Org      string
}

type scopeKey struct{}

// WithScope returns ctx carrying s; empty fields keep what ctx carried.
func WithScope(ctx context.Context, s Scope) context.Context {
	old := ScopeOf(ctx)
	if s.Contract == "" {
		s.Contract = old.Contract
	}
	if s.Org == "" {
		s.Org = old.Org
	}
	return context.WithValue(ctx, scopeKey{}, s)
}

// ScopeOf is the scope ctx carries.
func ScopeOf(ctx context.Context) Scope {
	s, _ := ctx.Value(scopeKey{}).(Scope)
	return s
}

// LogHandler adds to every record logged with a context the trace_id and
// span_id of its span and the contract and org of its Scope, so a log line
// leads to its trace and an operator can filter one contract's or one
// org's lines.
func LogHandler(next slog.Handler) slog.Handler {
	if h, ok := next.(logHandler); ok {
		return h
	}
	return logHandler{next}
}

type logHandler struct{ next slog.Handler }

func (h logHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if ctx != nil {
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
		}
		if s := ScopeOf(ctx); s != (Scope{}) {
			if s.Contract != "" {
				r.AddAttrs(slog.String("contract", s.Contract))
			}
			if s.Org != "" {
				r.AddAttrs(slog.String("org", s.Org))
			}
		}
	}
	return h.next.Handle(ctx, r)
}

func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.next.WithAttrs(attrs)}
}

func (h logHandler) WithGroup(name string) slog.Handler { return logHandler{h.next.WithGroup(name)} }

// NewLogger logs to w in format ("json" or "text") from level ("debug",
// "info", "warn", "error") up, through LogHandler.
func NewLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "json":
		return slog.New(LogHandler(slog.NewJSONHandler(w, opts))), nil
	case "text":
		return slog.New(LogHandler(slog.NewTextHandler(w, opts))), nil
	}
	return nil, fmt.Errorf("log format %q: want json or text", format)
}
