package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// The README's integration walk-through against `jsm up`: the provider
// registers its SOC tool as a source, the tool posts a CloudEvent with
// the source's secret and the platform answers with the incident it
// reported; a later event of the same ticket resolves that incident. After
// a restart an event published on NATS meanwhile is applied too, and a
// resent one is a duplicate.
func TestIntegrationWalkthrough(t *testing.T) {
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
	p.post(t, acme, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)
	p.post(t, itsec, "/jsm.contracts.v1.ContractService/SignContract", fmt.Sprintf(`{"contractId":%q}`, draft.ContractID), &out)

	var src struct {
		Secret string `json:"secret"`
	}
	p.post(t, itsec, "/jsm.integration.v1.IntegrationService/RegisterSource",
		fmt.Sprintf(`{"sourceId":"soc-tool","contractIds":[%q],"mapping":"MAPPING_JSM"}`, draft.ContractID), &src)

	report := fmt.Sprintf(`{"specversion":"1.0","id":"evt-1","source":"https://soc.example.com","type":"jsm.incident.report",
		"subject":%q,"datacontenttype":"application/json","data":{"title":"Ransomware on file server",
		"severity":"SEVERITY_CRITICAL","aware_at":%q,"external_ref":{"system":"soc","id":"CASE-7"}}}`,
		draft.ContractID, time.Now().UTC().Add(-time.Hour).Format(time.RFC3339))
	var first struct {
		Outcome    string `json:"outcome"`
		ObjectType string `json:"object_type"`
		ObjectID   string `json:"object_id"`
	}
	ingest(t, p, src.Secret, report, http.StatusOK, &first)
	if first.Outcome != "applied" || first.ObjectType != "incident" || first.ObjectID == "" {
		t.Fatalf("report answered %+v", first)
	}
	resolve := fmt.Sprintf(`{"specversion":"1.0","id":"evt-2","source":"https://soc.example.com","type":"jsm.incident.resolve",
		"subject":%q,"data":{"summary":"Restored from backup","external_ref":{"system":"soc","id":"CASE-7"}}}`, draft.ContractID)
	var second struct {
		ObjectID string `json:"object_id"`
		Position uint64 `json:"position"`
	}
	ingest(t, p, src.Secret, resolve, http.StatusOK, &second)
	if second.ObjectID != first.ObjectID {
		t.Fatalf("the resolution went to %s, not the ticket's incident %s", second.ObjectID, first.ObjectID)
	}
	p.stop(t)

	p = up(t, dir)
	// On NATS the source is a user of its own: its id and its secret, its
	// own inbox for the acks. Anonymous clients are refused.
	if anon, err := nats.Connect(p.natsURL, nats.Timeout(5*time.Second)); err == nil {
		anon.Close()
		t.Fatal("an anonymous client connected to NATS")
	}
	nc, err := nats.Connect(p.natsURL, nats.UserInfo("soc-tool", src.Secret), nats.CustomInboxPrefix("_INBOX.source-soc-tool"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	note := fmt.Sprintf(`{"specversion":"1.0","id":"evt-3","source":"https://soc.example.com","type":"jsm.incident.update",
		"subject":%q,"data":{"text":"Root cause: phishing mail","external_ref":{"system":"soc","id":"CASE-7"}}}`, draft.ContractID)
	if _, err := js.PublishMsg(&nats.Msg{Subject: "jsm.ingest.soc-tool.cases", Header: nats.Header{"Content-Type": {"application/cloudevents+json"}}, Data: []byte(note)}); err != nil {
		t.Fatal(err)
	}
	var dup struct {
		Duplicate bool `json:"duplicate"`
	}
	ingest(t, p, src.Secret, report, http.StatusOK, &dup)
	if !dup.Duplicate {
		t.Fatal("the report sent again after the restart is no duplicate")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var got struct {
			Incident struct {
				Status   string `json:"status"`
				Timeline []struct {
					Text string `json:"text"`
				} `json:"timeline"`
			} `json:"incident"`
		}
		p.post(t, p.token(t, "acme", "viewer"), "/jsm.incidents.v1.IncidentService/GetIncident",
			fmt.Sprintf(`{"incidentId":%q,"minPosition":"%d"}`, first.ObjectID, second.Position), &got)
		if got.Incident.Status != "INCIDENT_STATUS_RESOLVED" {
			t.Fatalf("incident after restart: %+v", got.Incident)
		}
		for _, e := range got.Incident.Timeline {
			if e.Text == "Root cause: phishing mail" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the NATS event never reached the incident: %+v", got.Incident)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// ingest posts one structured CloudEvent as the source, as curl would.
func ingest(t *testing.T, p *platform, secret, body string, status int, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, p.url+"/ingest/v1/sources/soc-tool/events", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cloudevents+json")
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("ingest: %s: %s", resp.Status, data)
	}
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("ingest: %v: %s", err, data)
	}
}
