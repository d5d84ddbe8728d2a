package e2e

import (
	"fmt"
	"slices"
	"testing"
)

// The change advisory walk-through as curl sends it, against `jsm up`: the
// contract makes software changes need the customer's approval; the
// provider requests one, the provider's approval alone leaves it
// requested, the customer's approves it; after a restart it is still approved.
func TestChangeAdvisoryWalkthrough(t *testing.T) {
	dir := dataDir(t)
	p := up(t, dir)
	acme, itsec := p.token(t, "acme", "org-admin"), p.token(t, "itsec", "org-admin")

	var draft struct {
		ContractID string `json:"contractId"`
	}
	p.post(t, acme, "/jsm.contracts.v1.ContractService/DraftContract",
		`{"customerOrgId":"acme","providerOrgId":"itsec","title":"Managed servers"}`, &draft)
	var out struct {
		Position string `json:"position"`
		Status   string `json:"status"`
	}
	p.post(t, acme, "/jsm.contracts.v1.ContractService/SetServiceLevels", fmt.Sprintf(
		`{"contractId":%q,"customerApprovalCategories":["CHANGE_CATEGORY_SOFTWARE"],"maintenanceWindows":[{"weekday":6,"start":"02:00","duration":"14400s","timeZone":"Europe/Berlin"}],"emergencyChangeReviewWithin":"172800s"}`,
		draft.ContractID), &out)
	p.post(t, acme, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)
	p.post(t, itsec, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)

	var requested struct {
		ChangeID string `json:"changeId"`
	}
	p.post(t, itsec, "/jsm.changeadvisory.v1.ChangeService/RequestChange", fmt.Sprintf(
		`{"contractId":%q,"title":"Patch OpenSSL","category":"CHANGE_CATEGORY_SOFTWARE","risk":"RISK_MEDIUM","links":[{"kind":"patching.remediation","id":"rem-1","items":["web-01"]}]}`,
		draft.ContractID), &requested)
	p.post(t, itsec, "/jsm.changeadvisory.v1.ChangeService/ApproveChange", fmt.Sprintf(`{"changeId":%q}`, requested.ChangeID), &out)
	if out.Status != "CHANGE_STATUS_REQUESTED" {
		t.Fatalf("after the provider's approval: %q, want requested", out.Status)
	}
	p.post(t, acme, "/jsm.changeadvisory.v1.ChangeService/ApproveChange", fmt.Sprintf(`{"changeId":%q}`, requested.ChangeID), &out)
	if out.Status != "CHANGE_STATUS_APPROVED" {
		t.Fatalf("after both approvals: %q, want approved", out.Status)
	}
	p.stop(t)

	p = up(t, dir)
	var got struct {
		Change struct {
			Status    string `json:"status"`
			Approvals []struct {
				OrgID      string `json:"orgId"`
				ApprovedAt string `json:"approvedAt"`
			} `json:"approvals"`
		} `json:"change"`
	}
	p.post(t, p.token(t, "acme", "viewer"), "/jsm.changeadvisory.v1.ChangeService/GetChange",
		fmt.Sprintf(`{"changeId":%q,"minPosition":%q}`, requested.ChangeID, out.Position), &got)
	var orgs []string
	for _, a := range got.Change.Approvals {
		if a.ApprovedAt == "" {
			t.Fatalf("approval without time: %+v", a)
		}
		orgs = append(orgs, a.OrgID)
	}
	if got.Change.Status != "CHANGE_STATUS_APPROVED" || !slices.Equal(orgs, []string{"itsec", "acme"}) {
		t.Fatalf("change after restart = %+v", got.Change)
	}
}
