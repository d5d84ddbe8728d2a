package trail

import (
	"github.com/jsmplatform/jsm/services/contracts"
	contractsdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/trail/app"
)

// Aggregates are the deciders GetAggregateAt rebuilds aggregates with, by
// aggregate type: each area adds one line with its decider and the
// message its read model shows. Importing an area's packages here also
// links its generated event types into protoregistry.GlobalTypes, which
// is how the trail shows every event's body as JSON.
func Aggregates() map[string]app.Aggregate {
	return map[string]app.Aggregate{
		contracts.Decider().AggregateType: app.FromDecider(contracts.Decider(), contractsdomain.ContractToProto),
	}
}
