package mapping

import (
	"github.com/cloudevents/sdk-go/v2/event"

	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
)

// Map is being written on the ingest-mapping branch; this placeholder
// rejects everything until it lands.
func Map(m integrationv1.Mapping, e event.Event) (Action, error) {
	return Action{}, Reject("unknown-type", "no mapping yet for %s", e.Type())
}
