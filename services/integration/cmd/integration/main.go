// Command integration runs the integration service alone (sources of ITSM
// events in, webhook subscriptions out), against a NATS server (or
// cluster) and a PostgreSQL server. Every flag can be given as an
// environment variable (JSM_ plus the flag name in upper case, dashes as
// underscores); its own settings are JSM_INTEGRATION_* (see
// integration.FromEnv). README.md has the table.
package main

import (
	"context"

	"github.com/jsmplatform/jsm/libs/rpc"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/services/integration"
)

func main() {
	svcmain.Main("integration", "127.0.0.1:8088", func(ctx context.Context, d svcmain.Deps) (rpc.Service, error) {
		deps, err := integration.FromEnv(integration.Deps{Deps: d})
		if err != nil {
			return nil, err
		}
		return integration.New(ctx, deps)
	})
}
