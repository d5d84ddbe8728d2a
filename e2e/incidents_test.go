package e2e

import (
	"fmt"
	"testing"
	"time"
)

// The README's incident walk-through, as curl sends it: the Connect
// protocol's JSON over HTTP against `jsm up`. A provider reports a
// critical incident on a signed contract, the contract's 4h notification
// clock runs from its awareness, the customer is notified and
// acknowledges; after a restart everything is still there.
func TestIncidentWalkthrough(t *testing.T) {
	dir := dataDir(t)
	p := up(t, dir)
	acme, itsec := p.token(t, "acme", "org-admin"), p.token(t, "itsec", "org-admin")

	var draft struct {
		ContractID string `json:"contractId"`
	}
	p.post(t, acme, "/jsm.contracts.v1.ContractService/DraftContract",
		`{"customerOrgId":"acme","providerOrgId":"itsec","title":"Managed SOC"}`, &draft)
	var out struct {
		Position string `json:"position"`
	}
	p.post(t, acme, "/jsm.contracts.v1.ContractService/SetServiceLevels",
		fmt.Sprintf(`{"contractId":%q,"incidentNotification":[{"severity":"SEVERITY_CRITICAL","within":"14400s"}]}`, draft.ContractID), &out)
	p.post(t, acme, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)
	p.post(t, itsec, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)

	aware := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	var reported struct {
		IncidentID string `json:"incidentId"`
		Position   string `json:"position"`
	}
	p.post(t, itsec, "/jsm.incidents.v1.IncidentService/ReportIncident", fmt.Sprintf(
		`{"contractId":%q,"title":"Ransomware on file server","severity":"SEVERITY_CRITICAL","awareAt":%q}`,
		draft.ContractID, aware.Format(time.RFC3339)), &reported)
	var notified struct {
		NotificationID string `json:"notificationId"`
	}
	p.post(t, itsec, "/jsm.incidents.v1.IncidentService/NotifyParty",
		fmt.Sprintf(`{"incidentId":%q,"channel":"email","content":"Critical incident on the file server"}`, reported.IncidentID), &notified)
	p.post(t, acme, "/jsm.incidents.v1.IncidentService/AcknowledgeNotification",
		fmt.Sprintf(`{"incidentId":%q,"notificationId":%q}`, reported.IncidentID, notified.NotificationID), &out)
	p.stop(t)

	p = up(t, dir)
	var got struct {
		Incident struct {
			Status string `json:"status"`
			Clocks []struct {
				Kind       string    `json:"kind"`
				PartyOrgID string    `json:"partyOrgId"`
				DueAt      time.Time `json:"dueAt"`
				MetAt      time.Time `json:"metAt"`
				Overdue    bool      `json:"overdue"`
			} `json:"clocks"`
		} `json:"incident"`
	}
	p.post(t, p.token(t, "acme", "viewer"), "/jsm.incidents.v1.IncidentService/GetIncident",
		fmt.Sprintf(`{"incidentId":%q,"minPosition":%q}`, reported.IncidentID, out.Position), &got)
	if got.Incident.Status != "INCIDENT_STATUS_OPEN" || len(got.Incident.Clocks) != 1 {
		t.Fatalf("incident after restart = %+v", got.Incident)
	}
	k := got.Incident.Clocks[0]
	if k.Kind != "CLOCK_KIND_PARTY_NOTIFICATION" || k.PartyOrgID != "itsec" || !k.DueAt.Equal(aware.Add(4*time.Hour)) || k.MetAt.IsZero() || k.Overdue {
		t.Fatalf("notification clock = %+v, want itsec's, due 4h after awareness, met in time", k)
	}
}
