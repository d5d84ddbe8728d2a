// Command trail runs the trail service alone, against a NATS server (or
// cluster) and a PostgreSQL server. Every flag can be given as an
// environment variable (JSM_ plus the flag name in upper case, dashes as
// underscores); the checkpoint signing key is $JSM_TRAIL_SIGNING_KEY
// (required), $JSM_TRAIL_CHECKPOINT_EVERY and $JSM_TRAIL_CHECKPOINT_INTERVAL
// set how often it signs. README.md has the table.
package main

import (
	"context"

	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/services/trail"
)

func main() {
	svcmain.Main("trail", "127.0.0.1:8086", func(_ context.Context, d svcmain.Deps) (rpc.Service, error) {
		deps, err := trail.FromEnv(trail.Deps{Store: d.Store, Pool: d.Pool, Logger: d.Logger}, "")
		if err != nil {
			return nil, err
		}
		return trail.New(deps)
	})
}
