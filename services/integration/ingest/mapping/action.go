package mapping

import (
	"errors"
	"fmt"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// Object is the kind of platform object an event is about.
type Object string

const (
	Incident    Object = "incident"
	Remediation Object = "remediation" // a vulnerability registered on a contract
	Assets      Object = "assets"
	Change      Object = "change"
)

// Ref names a ticket in the system it comes from ("servicenow",
// "INC0012345"). One ref maps to one platform object of its kind.
type Ref struct {
	System string
	ID     string
}

// IsZero reports whether the ref names nothing.
func (r Ref) IsZero() bool { return r.System == "" && r.ID == "" }

// Action is what one ingested event asks for, as desired state: the
// executor creates the object when its ref is new (and Create* is set),
// and applies each update that is set to the object the ref names.
// Request fields the executor owns (request_id, the object's id) are left
// empty here.
type Action struct {
	Object     Object
	ContractID string
	Ref        Ref
	// ObjectID is the platform id the sender named itself (e.g. data's
	// incident_id); empty means: find it by Ref.
	ObjectID string

	// Creating, when Ref names no object yet; nil means the ticket must
	// be known already (an update of a ticket never seen is rejected).
	ReportIncident        *incidentsv1.ReportIncidentRequest
	RegisterVulnerability *patchingv1.RegisterVulnerabilityRequest
	RequestChange         *changeadvisoryv1.RequestChangeRequest
	// RegisterAssets is applied every time (registering is an upsert).
	RegisterAssets *patchingv1.RegisterAssetsRequest

	// Updating an incident, in this order, each when set. Assess is
	// applied only when it changes the severity or the category; Resolve
	// only when the incident is not resolved yet.
	Assess  *incidentsv1.AssessIncidentRequest
	Note    *incidentsv1.AddTimelineEntryRequest
	Resolve *incidentsv1.ResolveIncidentRequest

	// Updating a change, each when set: its implementation's outcome, and
	// closing it (both applied only once).
	Implementation *changeadvisoryv1.RecordImplementationRequest
	CloseChange    *changeadvisoryv1.CloseChangeRequest
}

// RejectError says why an event cannot be mapped; it is final (the same
// event will never map). Type is a short problem slug, e.g. "unknown-type".
type RejectError struct {
	Type   string
	Reason string
}

func (e *RejectError) Error() string { return e.Reason }

// Reject returns a *RejectError of type typ.
func Reject(typ, format string, args ...any) error {
	return &RejectError{Type: typ, Reason: fmt.Sprintf(format, args...)}
}

// IsReject reports whether err is a *RejectError, and returns it.
func IsReject(err error) (*RejectError, bool) {
	var r *RejectError
	ok := errors.As(err, &r)
	return r, ok
}
