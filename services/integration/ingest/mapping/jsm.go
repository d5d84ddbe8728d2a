package mapping

import (
	"bytes"
	"encoding/json"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// The generic JSM vocabulary: CloudEvent types.
const (
	TypeIncidentReport        = "jsm.incident.report"
	TypeIncidentUpdate        = "jsm.incident.update"
	TypeIncidentResolve       = "jsm.incident.resolve"
	TypeVulnerabilityRegister = "jsm.vulnerability.register"
	TypeAssetsRegister        = "jsm.assets.register"
	TypeChangeRequest         = "jsm.change.request"
)

// jsmFields is a JSM event's data split in its parts: external_ref, and
// the rest, which is protojson of the matching request.
type jsmFields struct {
	ref    Ref
	refURL string
	rest   map[string]json.RawMessage
}

func mapJSM(typ, contract string, data []byte) (Action, error) {
	switch typ {
	case TypeIncidentReport, TypeIncidentUpdate, TypeIncidentResolve,
		TypeVulnerabilityRegister, TypeAssetsRegister, TypeChangeRequest:
	default:
		return Action{}, Reject("unknown-type", "event type %q is not one of the JSM vocabulary", clip(typ, 100))
	}
	f, err := jsmSplit(data)
	if err != nil {
		return Action{}, err
	}
	a := Action{ContractID: contract, Ref: f.ref}
	switch typ {
	case TypeIncidentReport:
		r := &incidentsv1.ReportIncidentRequest{}
		if err := protoDecode(f.rest, r); err != nil {
			return Action{}, err
		}
		if err := checkContract(contract, r.ContractId); err != nil {
			return Action{}, err
		}
		r.ContractId, r.RequestId = contract, ""
		if !f.ref.IsZero() && !hasRef(r.ExternalReferences, f.ref) {
			r.ExternalReferences = append(r.ExternalReferences, &incidentsv1.ExternalReference{System: f.ref.System, Id: f.ref.ID, Url: f.refURL})
		}
		a.Object, a.ReportIncident = Incident, r
	case TypeIncidentUpdate:
		// The assessment's and the note's fields share one object; the
		// note's are AddTimelineEntryRequest's text and occurred_at.
		note := map[string]json.RawMessage{}
		for _, k := range []string{"text", "occurred_at", "occurredAt"} {
			if v, ok := f.rest[k]; ok {
				note[k] = v
				delete(f.rest, k)
			}
		}
		as := &incidentsv1.AssessIncidentRequest{}
		if err := protoDecode(f.rest, as); err != nil {
			return Action{}, err
		}
		n := &incidentsv1.AddTimelineEntryRequest{}
		if err := protoDecode(note, n); err != nil {
			return Action{}, err
		}
		if err := f.target(&a, as.IncidentId); err != nil {
			return Action{}, err
		}
		if as.Severity != 0 || as.Category != "" {
			as.IncidentId, as.RequestId = "", ""
			a.Assess = as
		}
		if n.Text != "" {
			a.Note = n
		} else if n.OccurredAt != nil {
			return Action{}, Reject("invalid-field", "occurred_at without text")
		}
		if a.Assess == nil && a.Note == nil {
			return Action{}, Reject("invalid-field", "an update needs a severity, a category or a text")
		}
		a.Object = Incident
	case TypeIncidentResolve:
		r := &incidentsv1.ResolveIncidentRequest{}
		if err := protoDecode(f.rest, r); err != nil {
			return Action{}, err
		}
		if err := f.target(&a, r.IncidentId); err != nil {
			return Action{}, err
		}
		r.IncidentId, r.RequestId = "", ""
		a.Object, a.Resolve = Incident, r
	case TypeVulnerabilityRegister:
		r := &patchingv1.RegisterVulnerabilityRequest{}
		if err := protoDecode(f.rest, r); err != nil {
			return Action{}, err
		}
		if err := checkContract(contract, r.ContractId); err != nil {
			return Action{}, err
		}
		r.ContractId, r.RequestId = contract, ""
		a.Object, a.RegisterVulnerability = Remediation, r
	case TypeAssetsRegister:
		r := &patchingv1.RegisterAssetsRequest{}
		if err := protoDecode(f.rest, r); err != nil {
			return Action{}, err
		}
		if err := checkContract(contract, r.ContractId); err != nil {
			return Action{}, err
		}
		r.ContractId, r.RequestId = contract, ""
		a.Object, a.RegisterAssets = Assets, r
	case TypeChangeRequest:
		r := &changeadvisoryv1.RequestChangeRequest{}
		if err := protoDecode(f.rest, r); err != nil {
			return Action{}, err
		}
		if err := checkContract(contract, r.ContractId); err != nil {
			return Action{}, err
		}
		r.ContractId, r.RequestId = contract, ""
		a.Object, a.RequestChange = Change, r
	}
	return a, nil
}

// jsmSplit takes external_ref out of data: it is no request field, and
// protojson must see only the request's fields to reject unknown ones.
func jsmSplit(data []byte) (jsmFields, error) {
	var f jsmFields
	if err := json.Unmarshal(data, &f.rest); err != nil {
		return f, Reject("malformed-data", "data is not a JSON object: %v", err)
	}
	if f.rest == nil { // the literal null
		return f, Reject("malformed-data", "data is not a JSON object")
	}
	var raw json.RawMessage
	for _, k := range []string{"external_ref", "externalRef"} {
		if v, ok := f.rest[k]; ok {
			if raw != nil {
				return f, Reject("malformed-data", "both external_ref and externalRef")
			}
			raw = v
			delete(f.rest, k)
		}
	}
	if raw == nil || string(raw) == "null" {
		return f, nil
	}
	var ref struct {
		System *string `json:"system"`
		ID     *string `json:"id"`
		URL    *string `json:"url"`
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&ref); err != nil {
		return f, Reject("malformed-data", "external_ref: %v", err)
	}
	if ref.System == nil || ref.ID == nil {
		return f, Reject("invalid-field", "external_ref needs a system and an id")
	}
	f.ref = Ref{System: strings.TrimSpace(*ref.System), ID: strings.TrimSpace(*ref.ID)}
	// The limits of incidents' ExternalReference, which a ref becomes.
	if f.ref.System == "" || f.ref.ID == "" || len(f.ref.System) > 64 || len(f.ref.ID) > 128 {
		return f, Reject("invalid-field", "external_ref needs a system (up to 64 bytes) and an id (up to 128 bytes)")
	}
	if ref.URL != nil {
		f.refURL = *ref.URL
	}
	return f, nil
}

// protoDecode decodes fields, protojson, into m. encoding/json keeps the
// values as written, so re-encoding them loses nothing; protojson's
// positions in errors count in the re-encoded object, though.
func protoDecode(fields map[string]json.RawMessage, m proto.Message) error {
	b, err := json.Marshal(fields)
	if err != nil {
		return Reject("malformed-data", "%v", err)
	}
	if err := protojson.Unmarshal(b, m); err != nil {
		return Reject("malformed-data", "%v", err)
	}
	return nil
}

// target sets the incident an update or resolve is about: data's
// incident_id, or else the ref.
func (f jsmFields) target(a *Action, incidentID string) error {
	if incidentID != "" && !isUUID(incidentID) {
		return Reject("invalid-field", "incident_id %q is not a UUID", clip(incidentID, 64))
	}
	if incidentID == "" && f.ref.IsZero() {
		return Reject("invalid-field", "the event names no incident: give incident_id or external_ref")
	}
	a.ObjectID = strings.ToLower(incidentID)
	return nil
}

func hasRef(refs []*incidentsv1.ExternalReference, r Ref) bool {
	for _, x := range refs {
		if x.GetSystem() == r.System && x.GetId() == r.ID {
			return true
		}
	}
	return false
}
