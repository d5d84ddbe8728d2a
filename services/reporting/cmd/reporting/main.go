// Command reporting runs the reporting service alone, against a NATS
// server (or cluster) and a PostgreSQL server. Every flag can be given as
// an environment variable (JSM_ plus the flag name in upper case, dashes
// as underscores); README.md has the table.
package main

import (
	"context"

	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/services/reporting"
)

func main() {
	svcmain.Main("reporting", "127.0.0.1:8087", func(ctx context.Context, d svcmain.Deps) (rpc.Service, error) {
		return reporting.New(ctx, d)
	})
}
