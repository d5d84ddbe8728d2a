package e2e

import (
	"fmt"
	"testing"
	"time"
)

// The audits walk-through as curl sends it, against `jsm up`: the customer
// plans an audit of the provider (the contract asks for no notice), starts
// it, records a finding; the provider proposes a measure, the customer
// agrees; the provider implements it, the customer verifies it, closes the
// finding and completes the audit; after a restart it is all still there.
func TestAuditsWalkthrough(t *testing.T) {
	dir := dataDir(t)
	p := up(t, dir)
	acme, itsec := p.token(t, "acme", "auditor"), p.token(t, "itsec", "security-officer")
	admin := p.token(t, "acme", "org-admin")

	var draft struct {
		ContractID string `json:"contractId"`
	}
	p.post(t, admin, "/jsm.contracts.v1.ContractService/DraftContract",
		`{"customerOrgId":"acme","providerOrgId":"itsec","title":"Managed SOC"}`, &draft)
	var out struct {
		Position string `json:"position"`
	}
	p.post(t, admin, "/jsm.contracts.v1.ContractService/SetServiceLevels", fmt.Sprintf(
		`{"contractId":%q,"auditRights":{"perYear":4,"onSite":true}}`, draft.ContractID), &out)
	p.post(t, admin, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)
	p.post(t, p.token(t, "itsec", "org-admin"), "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)

	startsAt := time.Now().UTC().Add(3 * time.Second)
	var planned struct {
		AuditID string `json:"auditId"`
	}
	p.post(t, acme, "/jsm.audits.v1.AuditService/PlanAudit", fmt.Sprintf(
		`{"contractId":%q,"title":"On-site audit of the SOC","startsAt":%q,"type":"AUDIT_TYPE_ON_SITE","scope":"SOC operations"}`,
		draft.ContractID, startsAt.Format(time.RFC3339Nano)), &planned)
	time.Sleep(time.Until(startsAt) + 100*time.Millisecond)
	p.post(t, acme, "/jsm.audits.v1.AuditService/StartAudit", fmt.Sprintf(`{"auditId":%q}`, planned.AuditID), &out)
	var finding struct {
		FindingID string `json:"findingId"`
	}
	p.post(t, acme, "/jsm.audits.v1.AuditService/RecordFinding", fmt.Sprintf(
		`{"auditId":%q,"severity":"SEVERITY_MEDIUM","title":"Shared admin accounts","level":"NONCONFORMITY_LEVEL_MINOR","controlRef":"OPS.2.3","evidenceRefs":["interview-notes-3"]}`,
		planned.AuditID), &finding)
	var measure struct {
		MeasureID string `json:"measureId"`
	}
	p.post(t, itsec, "/jsm.audits.v1.AuditService/ProposeMeasure", fmt.Sprintf(
		`{"auditId":%q,"findingId":%q,"ownerOrgId":"itsec","dueAt":%q,"description":"Personal admin accounts"}`,
		planned.AuditID, finding.FindingID, time.Now().UTC().Add(30*24*time.Hour).Format(time.RFC3339)), &measure)
	p.post(t, acme, "/jsm.audits.v1.AuditService/AgreeMeasure", fmt.Sprintf(`{"auditId":%q,"measureId":%q}`, planned.AuditID, measure.MeasureID), &out)
	p.post(t, itsec, "/jsm.audits.v1.AuditService/RecordMeasureImplemented", fmt.Sprintf(
		`{"auditId":%q,"measureId":%q,"evidenceRefs":["IAM-export-2026-11"]}`, planned.AuditID, measure.MeasureID), &out)
	p.post(t, acme, "/jsm.audits.v1.AuditService/VerifyMeasure", fmt.Sprintf(`{"auditId":%q,"measureId":%q,"accepted":true}`, planned.AuditID, measure.MeasureID), &out)
	p.post(t, acme, "/jsm.audits.v1.AuditService/CloseFinding", fmt.Sprintf(`{"auditId":%q,"findingId":%q}`, planned.AuditID, finding.FindingID), &out)
	p.post(t, acme, "/jsm.audits.v1.AuditService/CompleteAudit", fmt.Sprintf(`{"auditId":%q,"summary":"one minor finding, fixed"}`, planned.AuditID), &out)
	p.stop(t)

	p = up(t, dir)
	var got struct {
		Audit struct {
			Status        string `json:"status"`
			NoticeGivenAt string `json:"noticeGivenAt"`
			Findings      []struct {
				Status   string `json:"status"`
				Measures []struct {
					Status string `json:"status"`
				} `json:"measures"`
			} `json:"findings"`
		} `json:"audit"`
	}
	p.post(t, p.token(t, "itsec", "viewer"), "/jsm.audits.v1.AuditService/GetAudit",
		fmt.Sprintf(`{"auditId":%q,"minPosition":%q}`, planned.AuditID, out.Position), &got)
	a := got.Audit
	if a.Status != "AUDIT_STATUS_COMPLETED" || a.NoticeGivenAt == "" || len(a.Findings) != 1 || a.Findings[0].Status != "FINDING_STATUS_CLOSED" ||
		len(a.Findings[0].Measures) != 1 || a.Findings[0].Measures[0].Status != "MEASURE_STATUS_VERIFIED" {
		t.Fatalf("audit after restart = %+v", a)
	}
}
