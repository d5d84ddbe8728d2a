package mapping

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	changeadvisoryv1 "github.com/jsmplatform/jsm/proto/gen/jsm/changeadvisory/v1"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
)

// The contract every sample's subject names.
const contract = "7d3f1c2a-5b8e-4f6a-9c1d-2e4b6a8c0f13"

const (
	jsm  = integrationv1.Mapping_MAPPING_JSM
	sn   = integrationv1.Mapping_MAPPING_SERVICENOW
	jira = integrationv1.Mapping_MAPPING_JIRA
)

// load reads a recorded CloudEvent (structured JSON mode) from testdata.
func load(t testing.TB, name string) event.Event {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var e event.Event
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return e
}

func newEvent(typ, subject, contentType, data string) event.Event {
	e := event.New()
	e.SetID("e1")
	e.SetSource("test")
	e.SetType(typ)
	if subject != "" {
		e.SetSubject(subject)
	}
	if contentType != "" {
		e.SetDataContentType(contentType)
	}
	e.DataEncoded = []byte(data)
	return e
}

func ts(s string) *timestamppb.Timestamp {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return timestamppb.New(t)
}

// actionDiff compares actions field by field, messages with proto.Equal
// (a nil request differs from an empty one).
func actionDiff(got, want Action) string {
	var d []string
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	for i := 0; i < g.NumField(); i++ {
		name := g.Type().Field(i).Name
		gf, wf := g.Field(i).Interface(), w.Field(i).Interface()
		if gm, ok := gf.(proto.Message); ok {
			wm := wf.(proto.Message)
			if !proto.Equal(gm, wm) {
				d = append(d, fmt.Sprintf("%s:\n  got  %s\n  want %s", name, text(gm), text(wm)))
			}
			continue
		}
		if !reflect.DeepEqual(gf, wf) {
			d = append(d, fmt.Sprintf("%s: got %#v, want %#v", name, gf, wf))
		}
	}
	return strings.Join(d, "\n")
}

func text(m proto.Message) string {
	if reflect.ValueOf(m).IsNil() {
		return "nil"
	}
	return "{" + prototext.MarshalOptions{}.Format(m) + "}"
}

var (
	socRef = Ref{System: "soc-ticketing", ID: "SOC-2291"}
	incRef = Ref{System: "servicenow", ID: "INC0010023"}
)

func TestMapSamples(t *testing.T) {
	tests := []struct {
		mapping integrationv1.Mapping
		files   []string // each maps to want
		want    Action
	}{{
		mapping: jsm,
		files:   []string{"jsm/incident_report.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: socRef,
			ReportIncident: &incidentsv1.ReportIncidentRequest{
				ContractId:       contract,
				Title:            "Ransomware detected on file server",
				Severity:         commonv1.Severity_SEVERITY_CRITICAL,
				AwareAt:          ts("2026-11-30T08:02:11Z"),
				Description:      `EDR quarantined LockBit loader on fs-01; 312 files encrypted in \\fs-01\finance before isolation.`,
				Category:         "malware",
				AffectedServices: []string{"File shares"},
				AffectedAssets:   []string{"fs-01.corp.example"},
				ExternalReferences: []*incidentsv1.ExternalReference{
					{System: "edr", Id: "ALERT-88213"},
					{System: "soc-ticketing", Id: "SOC-2291", Url: "https://soc.example.net/tickets/SOC-2291"},
				},
			},
		},
	}, {
		mapping: integrationv1.Mapping_MAPPING_UNSPECIFIED, // means JSM
		files:   []string{"jsm/incident_update.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: socRef,
			ObjectID: "3f2b8c1e-9a4d-4e6f-8b7a-5c2d1e0f9a8b",
			Assess: &incidentsv1.AssessIncidentRequest{
				Severity:  commonv1.Severity_SEVERITY_HIGH,
				Category:  "malware",
				Rationale: "Encryption contained to one share; backups verified.",
			},
			Note: &incidentsv1.AddTimelineEntryRequest{Text: "Restore from last night's backup started.", OccurredAt: ts("2026-11-30T09:35:00Z")},
		},
	}, {
		mapping: jsm,
		files:   []string{"jsm/incident_update_note.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: socRef,
			Note: &incidentsv1.AddTimelineEntryRequest{Text: "Finance share restored; users informed."},
		},
	}, {
		mapping: jsm,
		files:   []string{"jsm/incident_resolve.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: socRef,
			Resolve: &incidentsv1.ResolveIncidentRequest{Summary: "Loader removed, share restored, phishing mail purged from all mailboxes."},
		},
	}, {
		mapping: jsm,
		files:   []string{"jsm/vulnerability_register.json"},
		want: Action{
			Object: Remediation, ContractID: contract, Ref: Ref{System: "scanner", ID: "FINDING-40021"},
			RegisterVulnerability: &patchingv1.RegisterVulnerabilityRequest{
				ContractId:       contract,
				CveId:            "CVE-2024-3400",
				Severity:         commonv1.Severity_SEVERITY_CRITICAL,
				Product:          "PAN-OS",
				AffectedVersions: []string{">= 11.1.0, < 11.1.2-h3", "10.2.9"},
				CvssScore:        10,
				CvssVector:       "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H",
				KnownExploited:   true,
				Description:      "Command injection in the GlobalProtect feature of PAN-OS.",
			},
		},
	}, {
		mapping: jsm,
		files:   []string{"jsm/assets_register.json"},
		want: Action{
			Object: Assets, ContractID: contract,
			RegisterAssets: &patchingv1.RegisterAssetsRequest{
				ContractId: contract,
				Assets: []*patchingv1.Asset{{
					AssetId: "fw-edge-01", Name: "Edge firewall 1",
					Environment: patchingv1.Environment_ENVIRONMENT_PRODUCTION,
					Criticality: patchingv1.Criticality_CRITICALITY_HIGH,
					Software:    []*patchingv1.Software{{Product: "PAN-OS", Version: "11.1.1", Cpe: "cpe:2.3:o:paloaltonetworks:pan-os:11.1.1:*:*:*:*:*:*:*"}},
				}, {
					AssetId: "fs-01", Name: "File server",
					Software: []*patchingv1.Software{{Product: "Windows Server", Version: "2022"}},
				}},
			},
		},
	}, {
		mapping: jsm,
		files:   []string{"jsm/change_request.json"},
		want: Action{
			Object: Change, ContractID: contract, Ref: Ref{System: "ops-cab", ID: "CAB-77"},
			RequestChange: &changeadvisoryv1.RequestChangeRequest{
				ContractId:       contract,
				Title:            "Upgrade edge firewalls to PAN-OS 11.1.2-h3",
				Category:         commonv1.ChangeCategory_CHANGE_CATEGORY_SECURITY_CONFIGURATION,
				Description:      "Fixes CVE-2024-3400.",
				Risk:             changeadvisoryv1.Risk_RISK_MEDIUM,
				Impact:           "VPN unavailable during failover (about 2 minutes per node).",
				PlannedStart:     ts("2026-12-02T21:00:00Z"),
				PlannedEnd:       ts("2026-12-02T23:00:00Z"),
				ExpectedDowntime: durationpb.New(240 * time.Second),
				RollbackPlan:     "Boot the previous partition.",
				Links:            []*changeadvisoryv1.LinkedObject{{Kind: "patching.remediation", Id: "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d", Items: []string{"fw-edge-01"}}},
			},
		},
	}, {
		mapping: sn,
		files:   []string{"servicenow/incident_insert_plain.json", "servicenow/incident_insert_all.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: incRef,
			ReportIncident: &incidentsv1.ReportIncidentRequest{
				ContractId:         contract,
				Title:              "Suspicious outbound traffic from payroll server",
				Severity:           commonv1.Severity_SEVERITY_HIGH,
				AwareAt:            ts("2026-11-30T07:52:10Z"),
				Description:        "IDS alert 4471: payroll-app-02 beaconing to 203.0.113.50 every 60s since 07:40 UTC.",
				Category:           "network",
				AffectedServices:   []string{"Payroll"},
				AffectedAssets:     []string{"payroll-app-02"},
				ExternalReferences: []*incidentsv1.ExternalReference{{System: "servicenow", Id: "INC0010023"}},
			},
			Assess: &incidentsv1.AssessIncidentRequest{Severity: commonv1.Severity_SEVERITY_HIGH, Category: "network"},
		},
	}, {
		mapping: sn,
		files:   []string{"servicenow/incident_resolved_plain.json", "servicenow/incident_resolved_all.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: incRef,
			ReportIncident: &incidentsv1.ReportIncidentRequest{
				ContractId:         contract,
				Title:              "Suspicious outbound traffic from payroll server",
				Severity:           commonv1.Severity_SEVERITY_CRITICAL,
				AwareAt:            ts("2026-11-30T07:52:10Z"),
				Description:        "IDS alert 4471: payroll-app-02 beaconing to 203.0.113.50 every 60s since 07:40 UTC.",
				Category:           "network",
				AffectedServices:   []string{"Payroll"},
				AffectedAssets:     []string{"payroll-app-02"},
				ExternalReferences: []*incidentsv1.ExternalReference{{System: "servicenow", Id: "INC0010023"}},
			},
			Assess:  &incidentsv1.AssessIncidentRequest{Severity: commonv1.Severity_SEVERITY_CRITICAL, Category: "network"},
			Note:    &incidentsv1.AddTimelineEntryRequest{Text: "2026-11-30 11:05:44 - Beth Anglin (Additional comments)\nThanks, payroll runs again."},
			Resolve: &incidentsv1.ResolveIncidentRequest{Summary: "C2 implant removed, host re-imaged, service account credentials rotated."},
		},
	}, {
		mapping: sn,
		files:   []string{"servicenow/change_new_plain.json", "servicenow/change_new_all.json"},
		want: Action{
			Object: Change, ContractID: contract, Ref: Ref{System: "servicenow", ID: "CHG0030042"},
			RequestChange: &changeadvisoryv1.RequestChangeRequest{
				ContractId: contract,
				Title:      "Replace core switch in DC2",
				Category:   commonv1.ChangeCategory_CHANGE_CATEGORY_HARDWARE,
				Description: "Core switch dc2-core-01 reports failing supervisor module.\n\n" +
					"Implementation plan:\nInstall spare chassis, move uplinks one by one.\n\n" +
					"Justification:\nSupervisor failover already happened twice this month.",
				Risk:         changeadvisoryv1.Risk_RISK_HIGH,
				Impact:       "DC2 servers lose redundancy during the swap.",
				PlannedStart: ts("2026-12-05T22:00:00Z"),
				PlannedEnd:   ts("2026-12-06T02:00:00Z"),
				RollbackPlan: "Move uplinks back to the old chassis.",
			},
		},
	}, {
		mapping: sn,
		files:   []string{"servicenow/change_closed_plain.json", "servicenow/change_closed_all.json"},
		want: Action{
			Object: Change, ContractID: contract, Ref: Ref{System: "servicenow", ID: "CHG0030017"},
			RequestChange: &changeadvisoryv1.RequestChangeRequest{
				ContractId:   contract,
				Title:        "Emergency: disable SSLv3 and TLS 1.0 on mail gateways",
				Category:     commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE,
				Description:  "Active downgrade attempts seen against mx1/mx2.",
				Risk:         changeadvisoryv1.Risk_RISK_MEDIUM,
				PlannedStart: ts("2026-11-28T18:00:00Z"),
				PlannedEnd:   ts("2026-11-28T19:00:00Z"),
				RollbackPlan: "Re-enable protocols in the TLS policy.",
				Emergency:    true,
			},
			Implementation: &changeadvisoryv1.RecordImplementationRequest{Success: true, Notes: "Done; two legacy scanners needed a firmware update to keep sending mail."},
			CloseChange:    &changeadvisoryv1.CloseChangeRequest{},
		},
	}, {
		mapping: sn,
		files:   []string{"servicenow/vulnerable_item_plain.json", "servicenow/vulnerable_item_all.json"},
		want: Action{
			Object: Remediation, ContractID: contract, Ref: Ref{System: "servicenow", ID: "VIT0011187"},
			RegisterVulnerability: &patchingv1.RegisterVulnerabilityRequest{
				ContractId:       contract,
				CveId:            "CVE-2024-6387",
				Severity:         commonv1.Severity_SEVERITY_HIGH,
				Product:          "OpenSSH",
				AffectedVersions: []string{"9.6p1"},
				CvssScore:        8.1,
				CvssVector:       "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H",
				KnownExploited:   true,
				Description:      "regreSSHion: a signal handler race in sshd allows unauthenticated remote code execution as root.",
			},
		},
	}, {
		mapping: jira,
		files:   []string{"jira/issue_created.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: Ref{System: "jira", ID: "SEC-42"},
			ReportIncident: jiraReport(commonv1.Severity_SEVERITY_CRITICAL),
			Assess:         &incidentsv1.AssessIncidentRequest{Severity: commonv1.Severity_SEVERITY_CRITICAL},
		},
	}, {
		mapping: jira,
		files:   []string{"jira/issue_updated_done.json"},
		want: Action{
			Object: Incident, ContractID: contract, Ref: Ref{System: "jira", ID: "SEC-42"},
			ReportIncident: jiraReport(commonv1.Severity_SEVERITY_HIGH),
			Assess:         &incidentsv1.AssessIncidentRequest{Severity: commonv1.Severity_SEVERITY_HIGH},
			Note: &incidentsv1.AddTimelineEntryRequest{
				Text:       "Mia Krystof: Passwords of both users reset, sender domain blocked.",
				OccurredAt: ts("2026-11-30T14:47:59.812Z"),
			},
			Resolve: &incidentsv1.ResolveIncidentRequest{Summary: "Done"},
		},
	}, {
		mapping: jira,
		files:   []string{"jira/change_done.json"},
		want: Action{
			Object: Change, ContractID: contract, Ref: Ref{System: "jira", ID: "ITOPS-7"},
			RequestChange: &changeadvisoryv1.RequestChangeRequest{
				ContractId:  contract,
				Title:       "Emergency: block sender domain acme-hr.example on the mail gateway",
				Category:    commonv1.ChangeCategory_CHANGE_CATEGORY_SOFTWARE,
				Description: "Add *acme-hr.example* to the gateway's block list.\nLinked to SEC-42.",
				Emergency:   true,
			},
			Implementation: &changeadvisoryv1.RecordImplementationRequest{Success: true, Notes: "Done"},
			CloseChange:    &changeadvisoryv1.CloseChangeRequest{},
		},
	}}
	for _, tt := range tests {
		for _, f := range tt.files {
			t.Run(f, func(t *testing.T) {
				got, err := Map(tt.mapping, load(t, f))
				if err != nil {
					t.Fatalf("Map: %v", err)
				}
				if d := actionDiff(got, tt.want); d != "" {
					t.Error(d)
				}
			})
		}
	}
}

func jiraReport(sev commonv1.Severity) *incidentsv1.ReportIncidentRequest {
	return &incidentsv1.ReportIncidentRequest{
		ContractId: contract,
		Title:      "Credential phishing campaign against payroll users",
		Severity:   sev,
		AwareAt:    ts("2026-11-30T08:14:03.512Z"),
		Description: "Three users reported a credential phishing mail from payroll@acme-hr.example.\n" +
			"Observed so far:\n" +
			"- 2 users entered their password\n" +
			"- landing page https://login-acme.example/owa\n" +
			"Reported by @Mia Krystof\nSOC on call notified.",
		AffectedServices:   []string{"phishing", "credentials", "Email", "Single sign-on"},
		ExternalReferences: []*incidentsv1.ExternalReference{{System: "jira", Id: "SEC-42", Url: "https://acme.atlassian.net/browse/SEC-42"}},
	}
}

// edit returns a testdata sample's data with changes applied to its
// decoded JSON (nil deletes a key; keys with dots descend).
func edit(t *testing.T, name string, changes map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(load(t, name).Data(), &m); err != nil {
		t.Fatal(err)
	}
	for k, v := range changes {
		obj := m
		path := strings.Split(k, "/")
		for _, p := range path[:len(path)-1] {
			obj = obj[p].(map[string]any)
		}
		if v == nil {
			delete(obj, path[len(path)-1])
		} else {
			obj[path[len(path)-1]] = v
		}
	}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMapRejects(t *testing.T) {
	const other = "0e6f6c2b-1111-4222-8333-944455556666"
	report := `{"title":"x","severity":"SEVERITY_LOW","aware_at":"2026-11-30T08:00:00Z"}`
	tests := []struct {
		name    string
		mapping integrationv1.Mapping
		event   event.Event
		typ     string // the RejectError's Type
		reason  string // a part of its Reason
	}{
		{"unknown mapping", integrationv1.Mapping(99), newEvent("jsm.incident.report", contract, "", report), "unknown-mapping", ""},
		{"jsm unknown type", jsm, newEvent("jsm.incident.delete", contract, "", report), "unknown-type", "jsm.incident.delete"},
		{"servicenow unknown type", sn, newEvent("jsm.incident.report", contract, "", report), "unknown-type", ""},
		{"servicenow deleted", sn, newEvent("servicenow.incident.deleted", contract, "", edit(t, "servicenow/incident_insert_plain.json", nil)), "unknown-type", ""},
		{"servicenow unknown table", sn, newEvent("servicenow.problem", contract, "", `{"number":"PRB0040001"}`), "unsupported-record", "problem"},
		{"servicenow record without class", sn, newEvent("com.servicenow.record.updated", contract, "", `{"number":"PRB0040001"}`), "invalid-field", "sys_class_name"},
		{"jira unknown type", jira, newEvent("jira:comment_created", contract, "", `{}`), "unknown-type", ""},
		{"jira unknown webhookEvent", jira, newEvent("jira:issue_updated", contract, "", `{"webhookEvent":"jira:issue_deleted"}`), "unknown-type", "jira:issue_deleted"},
		{"jira generic type without webhookEvent", jira, newEvent(TypeJiraWebhook, contract, "", edit(t, "jira/issue_created.json", map[string]any{"webhookEvent": nil})), "unknown-type", ""},
		{"jira unmapped issue type", jira, newEvent("jira:issue_created", contract, "", edit(t, "jira/issue_created.json", map[string]any{"issue/fields/issuetype": map[string]any{"name": "Task"}})), "unsupported-record", "task"},

		{"malformed JSON", jsm, newEvent("jsm.incident.report", contract, "application/json", `{"title":`), "malformed-data", ""},
		{"malformed JSON servicenow", sn, newEvent("servicenow.incident", contract, "", `{"number":`), "malformed-data", ""},
		{"malformed JSON jira", jira, newEvent("jira:issue_created", contract, "", `[1,2]`), "malformed-data", ""},
		{"data not an object", jsm, newEvent("jsm.incident.report", contract, "", `"title"`), "malformed-data", ""},
		{"data null", sn, newEvent("servicenow.incident", contract, "", `null`), "malformed-data", ""},
		{"two JSON values", sn, newEvent("servicenow.incident", contract, "", `{} {}`), "malformed-data", ""},
		{"no data", jsm, newEvent("jsm.incident.report", contract, "application/json", ""), "malformed-data", "no data"},
		{"unknown field", jsm, newEvent("jsm.incident.report", contract, "", `{"title":"x","colour":"red"}`), "malformed-data", `unknown field "colour"`},
		{"unknown field in update", jsm, newEvent("jsm.incident.update", contract, "", `{"incident_id":"`+other+`","text":"x","summary":"y"}`), "malformed-data", `unknown field "summary"`},
		{"wrong field type", jsm, newEvent("jsm.incident.report", contract, "", `{"title":42}`), "malformed-data", ""},
		{"unknown external_ref field", jsm, newEvent("jsm.incident.report", contract, "", `{"title":"x","external_ref":{"system":"a","id":"b","key":"c"}}`), "malformed-data", "key"},
		{"external_ref and externalRef", jsm, newEvent("jsm.incident.report", contract, "", `{"external_ref":{"system":"a","id":"b"},"externalRef":{"system":"a","id":"b"}}`), "malformed-data", ""},

		{"wrong datacontenttype", jsm, newEvent("jsm.incident.report", contract, "text/plain", report), "unsupported-content-type", "text/plain"},
		{"xml", sn, newEvent("servicenow.incident", contract, "application/xml", `<xml/>`), "unsupported-content-type", ""},
		{"bad datacontenttype", jira, newEvent("jira:issue_created", contract, ";;", `{}`), "unsupported-content-type", ""},

		{"missing subject", jsm, newEvent("jsm.incident.report", "", "", report), "missing-contract", ""},
		{"subject not a UUID", sn, newEvent("servicenow.incident", "acme-msp", "", `{}`), "missing-contract", "acme-msp"},
		{"contract mismatch", jsm, newEvent("jsm.incident.report", contract, "", `{"title":"x","contract_id":"`+other+`"}`), "contract-mismatch", other},
		{"contract mismatch camel", jsm, newEvent("jsm.change.request", contract, "", `{"contractId":"`+other+`"}`), "contract-mismatch", ""},
		{"contract mismatch servicenow", sn, newEvent("servicenow.incident", contract, "", edit(t, "servicenow/incident_insert_all.json", map[string]any{"u_contract_id": map[string]any{"value": other, "display_value": "ACME MSS"}})), "contract-mismatch", ""},
		{"contract mismatch jira", jira, newEvent("jira:issue_created", contract, "", edit(t, "jira/issue_created.json", map[string]any{"contract_id": other})), "contract-mismatch", ""},

		{"update without id or ref", jsm, newEvent("jsm.incident.update", contract, "", `{"severity":"SEVERITY_HIGH"}`), "invalid-field", "incident_id or external_ref"},
		{"resolve without id or ref", jsm, newEvent("jsm.incident.resolve", contract, "", `{"summary":"done"}`), "invalid-field", "incident_id or external_ref"},
		{"update with nothing to do", jsm, newEvent("jsm.incident.update", contract, "", `{"incident_id":"`+other+`","rationale":"why"}`), "invalid-field", ""},
		{"update occurred_at without text", jsm, newEvent("jsm.incident.update", contract, "", `{"incident_id":"`+other+`","occurred_at":"2026-11-30T08:00:00Z"}`), "invalid-field", ""},
		{"incident_id not a UUID", jsm, newEvent("jsm.incident.resolve", contract, "", `{"incident_id":"INC1","summary":"done"}`), "invalid-field", "INC1"},
		{"external_ref without id", jsm, newEvent("jsm.incident.resolve", contract, "", `{"summary":"done","external_ref":{"system":"x"}}`), "invalid-field", ""},

		{"servicenow without number", sn, newEvent("servicenow.incident", contract, "", edit(t, "servicenow/incident_insert_plain.json", map[string]any{"number": nil, "sys_id": nil})), "invalid-field", "number"},
		{"servicenow incident without priority", sn, newEvent("servicenow.incident", contract, "", edit(t, "servicenow/incident_insert_plain.json", map[string]any{"priority": nil, "impact": nil})), "invalid-field", "priority"},
		{"servicenow incident without opened_at", sn, newEvent("servicenow.incident", contract, "", edit(t, "servicenow/incident_insert_plain.json", map[string]any{"opened_at": nil, "sys_created_on": nil})), "invalid-field", "opened_at"},
		{"servicenow bad opened_at", sn, newEvent("servicenow.incident", contract, "", edit(t, "servicenow/incident_insert_plain.json", map[string]any{"opened_at": "30.11.2026 07:52"})), "invalid-field", "opened_at"},
		{"servicenow bad start_date", sn, newEvent("servicenow.change_request", contract, "", edit(t, "servicenow/change_new_plain.json", map[string]any{"start_date": "tomorrow"})), "invalid-field", "start_date"},
		{"vulnerable item without CVE", sn, newEvent("servicenow.sn_vul_vulnerable_item", contract, "", edit(t, "servicenow/vulnerable_item_all.json", map[string]any{"vulnerability": map[string]any{"value": "abc", "display_value": "QID-38739"}})), "unsupported-record", "CVE"},
		{"vulnerable item without software", sn, newEvent("servicenow.sn_vul_vulnerable_item", contract, "", edit(t, "servicenow/vulnerable_item_plain.json", map[string]any{"software.name": nil})), "invalid-field", "software"},
		{"vulnerable item bad cvss", sn, newEvent("servicenow.sn_vul_vulnerable_item", contract, "", edit(t, "servicenow/vulnerable_item_plain.json", map[string]any{"cvss_score": "11"})), "invalid-field", "cvss_score"},
		{"jira unmapped priority", jira, newEvent("jira:issue_created", contract, "", edit(t, "jira/issue_created.json", map[string]any{"issue/fields/priority": map[string]any{"name": "Whenever"}})), "invalid-field", "Whenever"},
		{"jira without key", jira, newEvent("jira:issue_created", contract, "", edit(t, "jira/issue_created.json", map[string]any{"issue/key": nil})), "invalid-field", "issue.key"},
		{"jira without created", jira, newEvent("jira:issue_created", contract, "", edit(t, "jira/issue_created.json", map[string]any{"issue/fields/created": nil})), "invalid-field", "created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := Map(tt.mapping, tt.event)
			r, ok := IsReject(err)
			if !ok {
				t.Fatalf("Map = %+v, %v; want a rejection %s", a, err, tt.typ)
			}
			if r.Type != tt.typ || !strings.Contains(r.Reason, tt.reason) {
				t.Errorf("rejected %s: %s; want %s containing %q", r.Type, r.Reason, tt.typ, tt.reason)
			}
		})
	}
}

// Variations the samples do not cover.
func TestMapVariants(t *testing.T) {
	t.Run("content types", func(t *testing.T) {
		for _, ct := range []string{"", "application/json", "application/json; charset=utf-8", "application/vnd.jsm+json"} {
			e := load(t, "jsm/incident_resolve.json")
			e.SetDataContentType(ct)
			if _, err := Map(jsm, e); err != nil {
				t.Errorf("%q: %v", ct, err)
			}
		}
	})
	t.Run("uppercase subject", func(t *testing.T) {
		e := load(t, "jsm/incident_resolve.json")
		e.SetSubject(strings.ToUpper(contract))
		a, err := Map(jsm, e)
		if err != nil || a.ContractID != contract {
			t.Errorf("Map = %q, %v; want contract %s", a.ContractID, err, contract)
		}
	})
	t.Run("report with its ref listed already", func(t *testing.T) {
		e := newEvent(TypeIncidentReport, contract, "", `{"title":"x","external_references":[{"system":"s","id":"1","url":"https://s/1"}],"external_ref":{"system":"s","id":"1"}}`)
		a, err := Map(jsm, e)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(a.ReportIncident.ExternalReferences); n != 1 {
			t.Errorf("%d external references; want 1", n)
		}
	})
	t.Run("servicenow impact and urgency", func(t *testing.T) {
		for _, c := range []struct {
			impact, urgency string
			want            commonv1.Severity
		}{{"1", "1", commonv1.Severity_SEVERITY_CRITICAL}, {"1", "2", commonv1.Severity_SEVERITY_HIGH}, {"2", "2", commonv1.Severity_SEVERITY_MEDIUM}, {"3 - Low", "2 - Medium", commonv1.Severity_SEVERITY_LOW}, {"Low", "Low", commonv1.Severity_SEVERITY_LOW}} {
			data := edit(t, "servicenow/incident_insert_plain.json", map[string]any{"priority": nil, "impact": c.impact, "urgency": c.urgency})
			a, err := Map(sn, newEvent("servicenow.incident", contract, "", data))
			if err != nil || a.ReportIncident.Severity != c.want {
				t.Errorf("impact %s urgency %s: %v, %v; want %v", c.impact, c.urgency, a.ReportIncident.GetSeverity(), err, c.want)
			}
		}
	})
	t.Run("servicenow display values only, Table API wrapper", func(t *testing.T) {
		data := `{"result":{"number":"INC0010099","short_description":"Phish","priority":"1 - Critical","state":"Canceled",
			"opened_at":"2026-11-30T07:00:00Z","close_code":"Duplicate","comments":"Customer withdrew the report."}}`
		a, err := Map(sn, newEvent("com.servicenow.incident.updated", contract, "", data))
		if err != nil {
			t.Fatal(err)
		}
		if a.Ref.ID != "INC0010099" || a.ReportIncident.Severity != commonv1.Severity_SEVERITY_CRITICAL ||
			a.Resolve.GetSummary() != "Canceled in ServiceNow: Duplicate" || a.Note.GetText() != "Customer withdrew the report." {
			t.Errorf("got %+v", a)
		}
	})
	t.Run("servicenow failed change in review", func(t *testing.T) {
		data := edit(t, "servicenow/change_new_all.json", map[string]any{
			"state": map[string]any{"value": "0", "display_value": "Review"}, "close_code": "unsuccessful", "close_notes": "Spare chassis DOA.",
			"start_date": nil, "type": "Emergency", "category": "security",
		})
		a, err := Map(sn, newEvent("servicenow.change_request.updated", contract, "", data))
		if err != nil {
			t.Fatal(err)
		}
		want := &changeadvisoryv1.RecordImplementationRequest{Success: false, Notes: "Spare chassis DOA."}
		if !proto.Equal(a.Implementation, want) || a.CloseChange != nil {
			t.Errorf("implementation %v, close %v; want %v and no close", a.Implementation, a.CloseChange, want)
		}
		// Half a window is none; the category is the platform's own name.
		r := a.RequestChange
		if r.PlannedStart != nil || r.PlannedEnd != nil || !r.Emergency || r.Category != commonv1.ChangeCategory_CHANGE_CATEGORY_SECURITY_CONFIGURATION {
			t.Errorf("request %v", r)
		}
	})
	t.Run("servicenow newest journal entry", func(t *testing.T) {
		data := edit(t, "servicenow/incident_insert_plain.json", map[string]any{
			"comments":   "2026-11-30 08:00:00 - Beth Anglin (Additional comments)\nold\n",
			"work_notes": "2026-11-30 09:00:00 - David Loo (Work notes)\nnewer\nsecond line\n\n2026-11-30 07:00:00 - David Loo (Work notes)\noldest\n",
		})
		a, err := Map(sn, newEvent("servicenow.incident", contract, "", data))
		if err != nil {
			t.Fatal(err)
		}
		if want := "2026-11-30 09:00:00 - David Loo (Work notes)\nnewer\nsecond line"; a.Note.GetText() != want {
			t.Errorf("note %q; want %q", a.Note.GetText(), want)
		}
	})
	t.Run("jira wiki description, not done", func(t *testing.T) {
		data := edit(t, "jira/issue_updated_done.json", map[string]any{
			"issue/fields/description": "h1. Phish\nSee *attachment*.",
			"issue/fields/resolution":  nil,
			"issue/fields/status":      map[string]any{"name": "In Progress", "statusCategory": map[string]any{"key": "indeterminate"}},
			"issue/fields/issuetype":   map[string]any{"name": "[System] Incident"},
			"comment":                  nil,
		})
		a, err := Map(jira, newEvent("jira:issue_updated", contract, "", data))
		if err != nil {
			t.Fatal(err)
		}
		if a.ReportIncident.Description != "h1. Phish\nSee *attachment*." || a.Resolve != nil || a.Note != nil {
			t.Errorf("got %+v", a)
		}
	})
	t.Run("jira change cancelled", func(t *testing.T) {
		data := edit(t, "jira/change_done.json", map[string]any{"issue/fields/resolution": map[string]any{"name": "Won't Do"}})
		a, err := Map(jira, newEvent("com.atlassian.jira.issue.updated", contract, "", data))
		if err != nil {
			t.Fatal(err)
		}
		if a.RequestChange == nil || a.Implementation != nil || a.CloseChange != nil {
			t.Errorf("got %+v", a)
		}
	})
}

func TestHelpers(t *testing.T) {
	for s, want := range map[string]int{"3": 3, "-5": -5, "1 - Critical": 1, "12abc": 12} {
		if n, ok := leadingInt(s); !ok || n != want {
			t.Errorf("leadingInt(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-", "Critical", "- 1"} {
		if _, ok := leadingInt(s); ok {
			t.Errorf("leadingInt(%q) ok", s)
		}
	}
	if got := clip("añb", 2); got != "a" {
		t.Errorf("clip = %q; want a rune boundary", got)
	}
	if !isUUID(contract) || isUUID("7d3f1c2a5b8e4f6a9c1d2e4b6a8c0f13") || isUUID("7d3f1c2a-5b8e-4f6a-9c1d-2e4b6a8c0f1g") {
		t.Error("isUUID")
	}
}

func TestActionDiff(t *testing.T) {
	a := Action{Object: Change, CloseChange: &changeadvisoryv1.CloseChangeRequest{}}
	if d := actionDiff(a, a); d != "" {
		t.Errorf("equal actions differ: %s", d)
	}
	for _, b := range []Action{{Object: Change}, {Object: Incident, CloseChange: a.CloseChange}, {Object: Change, CloseChange: a.CloseChange, Ref: Ref{ID: "x"}}} {
		if actionDiff(a, b) == "" {
			t.Errorf("%+v equals %+v", b, a)
		}
	}
}
