package trail

import (
	auditsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/audits/v1"
	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	reportingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/reporting/v1"
	"github.com/jsmplatform/jsm/services/audits"
	auditsdomain "github.com/jsmplatform/jsm/services/audits/domain"
	"github.com/jsmplatform/jsm/services/changeadvisory"
	changedomain "github.com/jsmplatform/jsm/services/changeadvisory/domain"
	"github.com/jsmplatform/jsm/services/contracts"
	contractsdomain "github.com/jsmplatform/jsm/services/contracts/domain"
	"github.com/jsmplatform/jsm/services/incidents"
	incidentsdomain "github.com/jsmplatform/jsm/services/incidents/domain"
	"github.com/jsmplatform/jsm/services/patching"
	patchingdomain "github.com/jsmplatform/jsm/services/patching/domain"
	"github.com/jsmplatform/jsm/services/reporting"
	reportingdomain "github.com/jsmplatform/jsm/services/reporting/domain"
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
		incidents.Decider().AggregateType: app.FromDecider(incidents.Decider(), func(s incidentsdomain.State, _ uint64) *incidentsv1.Incident {
			return incidentsdomain.ToProto(s, true)
		}),
		incidents.ExerciseDecider().AggregateType: app.FromDecider(incidents.ExerciseDecider(), func(x incidentsdomain.Exercise, _ uint64) *incidentsv1.Exercise {
			return incidentsdomain.ExerciseToProto(x)
		}),
		patching.RemediationDecider().AggregateType: app.FromDecider(patching.RemediationDecider(), func(r patchingdomain.Remediation, _ uint64) *patchingv1.Remediation {
			return patchingdomain.ToProto(r, true)
		}),
		audits.Decider().AggregateType:          app.FromDecider(audits.Decider(), func(s auditsdomain.State, _ uint64) *auditsv1.Audit { return auditsdomain.ToProto(s) }),
		audits.ChecklistDecider().AggregateType: app.FromDecider(audits.ChecklistDecider(), func(c auditsdomain.Checklist, _ uint64) *auditsv1.Checklist { return auditsdomain.ChecklistToProto(c) }),
		changeadvisory.Decider().AggregateType: app.FromDecider(changeadvisory.Decider(), func(s changedomain.State, _ uint64) *changeadvisoryv1.Change {
			return changedomain.ToProto(s)
		}),
		reporting.Decider().AggregateType: app.FromDecider(reporting.Decider(), func(r reportingdomain.Report, _ uint64) *reportingv1.Report { return reportingdomain.ToProto(r) }),
	}
}
