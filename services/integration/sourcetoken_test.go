package integration_test

import (
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/testkit"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
)

// A token of integration's issuer (what ingest calls the platform with)
// acts as one source, on the contracts it names, and as nothing else: it
// is no master key.
func TestSourceTokensAreHeldToTheirSource(t *testing.T) {
	p := start(t, ingest.Limits{})
	con := p.contract()
	other := p.contract()
	src := domain.State{ID: "soc", Org: provider, ContractIDs: []string{con}}
	token := func(pr auth.Principal) connect.ClientOption {
		t.Helper()
		tok, err := p.srv.Mint(pr)
		if err != nil {
			t.Fatal(err)
		}
		return connect.WithInterceptors(testkit.Bearer(tok))
	}
	incidents := func(opt connect.ClientOption) incidentsv1connect.IncidentServiceClient {
		return incidentsv1connect.NewIncidentServiceClient(http.DefaultClient, p.srv.URL, opt)
	}
	report := func(contract string) *connect.Request[incidentsv1.ReportIncidentRequest] {
		return connect.NewRequest(&incidentsv1.ReportIncidentRequest{
			ContractId: contract, Title: "Phishing wave", Severity: commonv1.Severity_SEVERITY_LOW,
			AwareAt: timestamppb.New(time.Now().Add(-time.Minute)),
		})
	}

	// The source's own token reports on its contract, not on another.
	asSource := incidents(token(ingest.Principal(src)))
	if _, err := asSource.ReportIncident(ctx, report(con)); err != nil {
		t.Fatalf("source on its contract: %v", err)
	}
	if _, err := asSource.ReportIncident(ctx, report(other)); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("source on a contract it was not registered for: %v, want permission_denied", err)
	}
	// Nor can it act on another contract's incident by its id.
	inc := must[incidentsv1.ReportIncidentResponse](t)(p.incidents(provider).ReportIncident(ctx, report(other)))
	_, err := asSource.AddTimelineEntry(ctx, connect.NewRequest(&incidentsv1.AddTimelineEntryRequest{
		IncidentId: inc.IncidentId, Text: "written by a stranger", OccurredAt: timestamppb.New(time.Now().Add(-time.Second)),
	}))
	if connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("source on another contract's incident: %v, want permission_denied", err)
	}
	got := must[incidentsv1.GetIncidentResponse](t)(p.incidents(provider).GetIncident(ctx, connect.NewRequest(&incidentsv1.GetIncidentRequest{IncidentId: inc.IncidentId, MinPosition: inc.Position})))
	for _, e := range got.Incident.GetTimeline() {
		if e.GetText() == "written by a stranger" {
			t.Fatal("the source wrote to an incident of a contract it was not registered for")
		}
	}

	// Claiming more than a source may: refused before any service sees it.
	for name, pr := range map[string]auth.Principal{
		"org-admin role": {Org: provider, User: "source:soc", Roles: []string{"org-admin"}, Contracts: []string{con}},
		"extra role":     {Org: provider, User: "source:soc", Roles: []string{auth.SourceRole, "incident-manager"}, Contracts: []string{con}},
		"a user":         {Org: provider, User: "alice", Roles: []string{auth.SourceRole}, Contracts: []string{con}},
		"any contract":   {Org: provider, User: "source:soc", Roles: []string{auth.SourceRole}},
	} {
		if _, err := incidents(token(pr)).ReportIncident(ctx, report(con)); connect.CodeOf(err) != connect.CodeUnauthenticated {
			t.Errorf("%s: %v, want unauthenticated", name, err)
		}
	}

	// At services ingest does not drive, a source's token does nothing.
	opt := token(ingest.Principal(src))
	contracts := contractsv1connect.NewContractServiceClient(http.DefaultClient, p.srv.URL, opt)
	if _, err := contracts.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: con})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("contracts with a source's token: %v, want permission_denied", err)
	}
	if _, err := contracts.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: customer, ProviderOrgId: provider, Title: "x"})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("drafting a contract with a source's token: %v, want permission_denied", err)
	}
	integ := integrationv1connect.NewIntegrationServiceClient(http.DefaultClient, p.srv.URL, opt)
	if _, err := integ.ListSources(ctx, connect.NewRequest(&integrationv1.ListSourcesRequest{})); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Errorf("integration with a source's token: %v, want permission_denied", err)
	}
}
