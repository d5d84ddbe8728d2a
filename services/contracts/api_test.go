package contracts_test

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/validate"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
)

func TestMain(m *testing.M) { testkit.Main(m) }

type platform struct {
	t     *testing.T
	url   string
	key   ed25519.PrivateKey
	store *eventstore.Store
	pool  *pgxpool.Pool
	svc   *contracts.Service
}

// start runs the contracts service on a real NATS and PostgreSQL behind the
// same interceptors as production, and returns a way to call it.
func start(t *testing.T) *platform {
	t.Helper()
	n := testkit.StartNATS(t)
	p := &platform{t: t, store: n.Store(), pool: testkit.PostgresPool(t)}
	p.svc, p.url = p.serve(contracts.Deps{ReadWait: time.Second})
	return p
}

// serve starts one more instance of the service on the same stream and database.
func (p *platform) serve(d contracts.Deps) (*contracts.Service, string) {
	t := p.t
	ctx, cancel := context.WithCancel(context.Background())
	d.Store, d.Pool = p.store, p.pool
	svc, err := contracts.New(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	pub, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.key == nil {
		p.key = key
	}
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: auth.DevIssuer, Audience: auth.DevAudience, Keys: []crypto.PublicKey{pub, p.key.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, h := range svc.Handlers(connect.WithInterceptors(auth.NewInterceptor(v, svc.Policy()), validate.NewInterceptor())) {
		mux.Handle(h.Path, h.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return svc, srv.URL
}

func (p *platform) token(org string, roles ...string) string {
	tok, err := auth.Mint(p.key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: org, User: org + "-user", Roles: roles}, time.Hour)
	if err != nil {
		p.t.Fatal(err)
	}
	return tok
}

func (p *platform) client(org string, roles ...string) contractsv1connect.ContractServiceClient {
	return p.clientAt(p.url, p.token(org, roles...))
}

func (p *platform) clientAt(url, token string) contractsv1connect.ContractServiceClient {
	return contractsv1connect.NewContractServiceClient(http.DefaultClient, url, connect.WithInterceptors(bearer(token)))
}

func bearer(token string) connect.UnaryInterceptorFunc {
	return func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			if token != "" {
				req.Header().Set("Authorization", "Bearer "+token)
			}
			return next(ctx, req)
		}
	}
}

func must[T any](t *testing.T) func(*connect.Response[T], error) *T {
	return func(r *connect.Response[T], err error) *T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return r.Msg
	}
}

func code(t *testing.T, want connect.Code, err error) {
	t.Helper()
	if connect.CodeOf(err) != want {
		t.Fatalf("got %v (code %v), want %v", err, connect.CodeOf(err), want)
	}
}

var ctx = context.Background()

func draft(t *testing.T, c contractsv1connect.ContractServiceClient) *contractsv1.DraftContractResponse {
	t.Helper()
	return must[contractsv1.DraftContractResponse](t)(c.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
		CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed SOC", Reference: "C-2026-17",
		ServicesInScope: []string{"SOC", "patching"}, CriticalFunction: true, TerminationNotice: durationpb.New(90 * 24 * time.Hour),
	})))
}

func get(t *testing.T, c contractsv1connect.ContractServiceClient, id string, pos uint64) *contractsv1.Contract {
	t.Helper()
	return must[contractsv1.GetContractResponse](t)(c.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: id, MinPosition: pos}))).Contract
}

func TestContractLifecycle(t *testing.T) {
	p := start(t)
	customer, provider := p.client("acme", "org-admin"), p.client("itsec", "contract-manager")

	d := draft(t, customer)
	c := get(t, provider, d.ContractId, d.Position)
	if c.Status != contractsv1.ContractStatus_CONTRACT_STATUS_DRAFT || c.Phase != contractsv1.Phase_PHASE_EXPLORE || c.Title != "Managed SOC" || c.CustomerOrgId != "acme" || c.ProviderOrgId != "itsec" {
		t.Fatalf("drafted contract = %v", c)
	}

	must[contractsv1.AddRequirementResponse](t)(customer.AddRequirement(ctx, connect.NewRequest(&contractsv1.AddRequirementRequest{
		ContractId: d.ContractId, Requirement: &contractsv1.Requirement{RequirementId: "REQ-1", StandardReference: "ISO27001:2022 A.5.20", Text: "Supplier agreements address security"},
	})))
	must[contractsv1.AssignContactResponse](t)(provider.AssignContact(ctx, connect.NewRequest(&contractsv1.AssignContactRequest{
		ContractId: d.ContractId, Contact: &contractsv1.Contact{OrgId: "itsec", Role: "security-officer", Name: "Ida Sec", Email: "ida@itsec.example"},
	})))
	must[contractsv1.AddSubcontractorResponse](t)(provider.AddSubcontractor(ctx, connect.NewRequest(&contractsv1.AddSubcontractorRequest{
		ContractId: d.ContractId, Subcontractor: &contractsv1.Subcontractor{Name: "DC GmbH", Service: "data centre", Rank: 1},
	})))
	must[contractsv1.SetServiceLevelsResponse](t)(customer.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId: d.ContractId,
		IncidentNotification: []*contractsv1.SeverityDeadline{
			{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(time.Hour)},
			{Severity: commonv1.Severity_SEVERITY_HIGH, Within: durationpb.New(4 * time.Hour)},
		},
		PatchDeadlines:             []*contractsv1.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_CRITICAL, Within: durationpb.New(72 * time.Hour)}},
		ReportCadence:              contractsv1.ReportCadence_REPORT_CADENCE_MONTHLY,
		AuditRights:                &contractsv1.AuditRights{PerYear: 1, Notice: durationpb.New(14 * 24 * time.Hour), OnSite: true},
		CustomerApprovalCategories: []commonv1.ChangeCategory{commonv1.ChangeCategory_CHANGE_CATEGORY_SERVICE_SCOPE},
		MaintenanceWindows:         []*contractsv1.MaintenanceWindow{{Weekday: 6, Start: "22:00", Duration: durationpb.New(4 * time.Hour), TimeZone: "Europe/Berlin"}},
	})))

	s1 := must[contractsv1.SignContractResponse](t)(customer.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	if s1.Activated {
		t.Fatal("one signature activated the contract")
	}
	s2 := must[contractsv1.SignContractResponse](t)(provider.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId, TermsVersion: 1})))
	if !s2.Activated {
		t.Fatal("second signature did not activate the contract")
	}
	c = get(t, customer, d.ContractId, s2.Position)
	if c.Status != contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE || c.InForce.GetVersion() != 1 || len(c.InForce.GetSignatures()) != 2 {
		t.Fatalf("signed contract = %v", c)
	}
	if got := c.ServiceLevels.GetIncidentNotification(); len(got) != 2 || got[0].Within.AsDuration() != time.Hour {
		t.Fatalf("service levels = %v", c.ServiceLevels)
	}
	if len(c.InForce.Terms.Requirements) != 1 || len(c.InForce.Terms.Contacts) != 1 || len(c.InForce.Terms.Subcontractors) != 1 {
		t.Fatalf("terms in force = %v", c.InForce.Terms)
	}

	var pos uint64
	for _, ph := range []contractsv1.Phase{contractsv1.Phase_PHASE_OFFER, contractsv1.Phase_PHASE_DECIDE, contractsv1.Phase_PHASE_MIGRATE, contractsv1.Phase_PHASE_OPERATE} {
		pos = must[contractsv1.AdvancePhaseResponse](t)(provider.AdvancePhase(ctx, connect.NewRequest(&contractsv1.AdvancePhaseRequest{ContractId: d.ContractId, Phase: ph}))).Position
	}
	if c = get(t, customer, d.ContractId, pos); c.Phase != contractsv1.Phase_PHASE_OPERATE {
		t.Fatalf("phase = %v", c.Phase)
	}

	// An amendment after activation: version 2 is pending, version 1 stays in force.
	pos = must[contractsv1.AddRequirementResponse](t)(customer.AddRequirement(ctx, connect.NewRequest(&contractsv1.AddRequirementRequest{
		ContractId: d.ContractId, Requirement: &contractsv1.Requirement{RequirementId: "REQ-2", Text: "Quarterly restore tests"},
	}))).Position
	c = get(t, provider, d.ContractId, pos)
	if c.Current.Version != 2 || c.InForce.Version != 1 || len(c.Current.Terms.Requirements) != 2 || len(c.InForce.Terms.Requirements) != 1 || c.Status != contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE {
		t.Fatalf("after amendment current=%v in_force=%v status=%v", c.Current, c.InForce, c.Status)
	}

	// Both orgs list it; the customer's counterparty filter finds it.
	for _, cl := range []contractsv1connect.ContractServiceClient{customer, provider} {
		l := must[contractsv1.ListContractsResponse](t)(cl.ListContracts(ctx, connect.NewRequest(&contractsv1.ListContractsRequest{MinPosition: pos, Status: contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE})))
		if len(l.Contracts) != 1 || l.Contracts[0].ContractId != d.ContractId {
			t.Fatalf("list = %v", l.Contracts)
		}
	}

	// Termination respects the 90-day notice period.
	_, err := customer.TerminateContract(ctx, connect.NewRequest(&contractsv1.TerminateContractRequest{
		ContractId: d.ContractId, Reason: "re-tender", EffectiveDate: timestamppb.New(time.Now().Add(30 * 24 * time.Hour)),
	}))
	code(t, connect.CodeFailedPrecondition, err)
	pos = must[contractsv1.TerminateContractResponse](t)(customer.TerminateContract(ctx, connect.NewRequest(&contractsv1.TerminateContractRequest{
		ContractId: d.ContractId, Reason: "re-tender", EffectiveDate: timestamppb.New(time.Now().Add(100 * 24 * time.Hour)),
	}))).Position
	c = get(t, provider, d.ContractId, pos)
	if c.Status != contractsv1.ContractStatus_CONTRACT_STATUS_TERMINATED || c.Phase != contractsv1.Phase_PHASE_TERMINATED || c.Termination.GetReason() != "re-tender" {
		t.Fatalf("terminated contract = %v", c)
	}
	_, err = provider.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId}))
	code(t, connect.CodeFailedPrecondition, err)

	// The read model rebuilt from position 0 equals the live one.
	before := dumpReadModel(t, p.pool)
	if err := p.svc.Projector().Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if err := p.svc.Projector().WaitFor(ctx, pos, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if after := dumpReadModel(t, p.pool); after != before {
		t.Fatalf("rebuilt read model differs:\nlive    %s\nrebuilt %s", before, after)
	}
}

func dumpReadModel(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	var s string
	err := pool.QueryRow(ctx, `SELECT coalesce(string_agg(concat_ws('|', contract_id, customer_org_id, provider_org_id, title, status, phase, encode(view, 'hex'), position, created_at, updated_at), E'\n' ORDER BY contract_id), '') FROM contracts.contracts`).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestErrorCodes(t *testing.T) {
	p := start(t)
	customer, provider := p.client("acme", "org-admin"), p.client("itsec", "org-admin")
	d := draft(t, customer)
	missing := "01900000-0000-7000-8000-000000000000"

	cases := []struct {
		name string
		want connect.Code
		call func() error
	}{
		{"empty title", connect.CodeInvalidArgument, func() error {
			_, err := customer.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec"}))
			return err
		}},
		{"customer is provider", connect.CodeInvalidArgument, func() error {
			_, err := customer.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "acme", Title: "x"}))
			return err
		}},
		{"contract id not a uuid", connect.CodeInvalidArgument, func() error {
			_, err := customer.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: "jsm.evt.>"}))
			return err
		}},
		{"duplicate severity", connect.CodeInvalidArgument, func() error {
			sd := &contractsv1.SeverityDeadline{Severity: commonv1.Severity_SEVERITY_LOW, Within: durationpb.New(time.Hour)}
			_, err := customer.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{ContractId: d.ContractId, IncidentNotification: []*contractsv1.SeverityDeadline{sd, sd}}))
			return err
		}},
		{"bad page token", connect.CodeInvalidArgument, func() error {
			_, err := customer.ListContracts(ctx, connect.NewRequest(&contractsv1.ListContractsRequest{PageToken: "!!"}))
			return err
		}},
		{"no token", connect.CodeUnauthenticated, func() error {
			_, err := p.clientAt(p.url, "").GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.ContractId}))
			return err
		}},
		{"expired token", connect.CodeUnauthenticated, func() error {
			tok, _ := auth.Mint(p.key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: "acme", User: "u", Roles: []string{"org-admin"}}, -time.Hour)
			_, err := p.clientAt(p.url, tok).GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.ContractId}))
			return err
		}},
		{"viewer may not draft", connect.CodePermissionDenied, func() error {
			_, err := p.client("acme", "viewer").DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "x"}))
			return err
		}},
		{"security officer may not sign", connect.CodePermissionDenied, func() error {
			_, err := p.client("acme", "security-officer").SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId}))
			return err
		}},
		{"draft between other orgs", connect.CodePermissionDenied, func() error {
			_, err := customer.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "x", ProviderOrgId: "y", Title: "x"}))
			return err
		}},
		{"customer adds a subcontractor", connect.CodePermissionDenied, func() error {
			_, err := customer.AddSubcontractor(ctx, connect.NewRequest(&contractsv1.AddSubcontractorRequest{ContractId: d.ContractId, Subcontractor: &contractsv1.Subcontractor{Name: "n", Service: "s", Rank: 1}}))
			return err
		}},
		{"unknown contract", connect.CodeNotFound, func() error {
			_, err := customer.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: missing}))
			return err
		}},
		{"sign unknown contract", connect.CodeNotFound, func() error {
			_, err := customer.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: missing}))
			return err
		}},
		{"skip a phase", connect.CodeFailedPrecondition, func() error {
			_, err := customer.AdvancePhase(ctx, connect.NewRequest(&contractsv1.AdvancePhaseRequest{ContractId: d.ContractId, Phase: contractsv1.Phase_PHASE_DECIDE}))
			return err
		}},
		{"migrate before signing", connect.CodeFailedPrecondition, func() error {
			for _, ph := range []contractsv1.Phase{contractsv1.Phase_PHASE_OFFER, contractsv1.Phase_PHASE_DECIDE} {
				if _, err := customer.AdvancePhase(ctx, connect.NewRequest(&contractsv1.AdvancePhaseRequest{ContractId: d.ContractId, Phase: ph})); err != nil {
					return err
				}
			}
			_, err := customer.AdvancePhase(ctx, connect.NewRequest(&contractsv1.AdvancePhaseRequest{ContractId: d.ContractId, Phase: contractsv1.Phase_PHASE_MIGRATE}))
			return err
		}},
		{"sign twice", connect.CodeFailedPrecondition, func() error {
			if _, err := provider.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})); err != nil {
				return err
			}
			_, err := provider.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId}))
			return err
		}},
		{"sign a version that is not current", connect.CodeFailedPrecondition, func() error {
			_, err := customer.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId, TermsVersion: 7}))
			return err
		}},
		{"min position beyond the stream", connect.CodeInvalidArgument, func() error {
			_, err := customer.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: d.ContractId, MinPosition: 1 << 40}))
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := lastPosition(t, p.store)
			code(t, tc.want, tc.call())
			if tc.want != connect.CodeFailedPrecondition && lastPosition(t, p.store) != before {
				t.Fatal("a rejected request appended events")
			}
		})
	}
}

func lastPosition(t *testing.T, s *eventstore.Store) uint64 {
	t.Helper()
	pos, err := s.LastPosition(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return pos
}

// An org that is not a party learns nothing: every read and write of the
// contract is not found, and its lists are empty.
func TestOtherOrgsGetNotFound(t *testing.T) {
	p := start(t)
	d := draft(t, p.client("acme", "org-admin"))
	outsider := p.client("evil", "org-admin")
	id := d.ContractId
	calls := map[string]func() error{
		"GetContract": func() error {
			_, err := outsider.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: id, MinPosition: d.Position}))
			return err
		},
		"SignContract": func() error {
			_, err := outsider.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id}))
			return err
		},
		"AddRequirement": func() error {
			_, err := outsider.AddRequirement(ctx, connect.NewRequest(&contractsv1.AddRequirementRequest{ContractId: id, Requirement: &contractsv1.Requirement{RequirementId: "R", Text: "t"}}))
			return err
		},
		"AssignContact": func() error {
			_, err := outsider.AssignContact(ctx, connect.NewRequest(&contractsv1.AssignContactRequest{ContractId: id, Contact: &contractsv1.Contact{OrgId: "evil", Role: "r", Name: "n"}}))
			return err
		},
		"AddSubcontractor": func() error {
			_, err := outsider.AddSubcontractor(ctx, connect.NewRequest(&contractsv1.AddSubcontractorRequest{ContractId: id, Subcontractor: &contractsv1.Subcontractor{Name: "n", Service: "s", Rank: 1}}))
			return err
		},
		"SetServiceLevels": func() error {
			_, err := outsider.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{ContractId: id}))
			return err
		},
		"AdvancePhase": func() error {
			_, err := outsider.AdvancePhase(ctx, connect.NewRequest(&contractsv1.AdvancePhaseRequest{ContractId: id, Phase: contractsv1.Phase_PHASE_OFFER}))
			return err
		},
		"TerminateContract": func() error {
			_, err := outsider.TerminateContract(ctx, connect.NewRequest(&contractsv1.TerminateContractRequest{ContractId: id, Reason: "r", EffectiveDate: timestamppb.New(time.Now().Add(1000 * time.Hour))}))
			return err
		},
	}
	before := lastPosition(t, p.store)
	for name, call := range calls {
		t.Run(name, func(t *testing.T) { code(t, connect.CodeNotFound, call()) })
	}
	if lastPosition(t, p.store) != before {
		t.Fatal("an outsider's request appended events")
	}
	l := must[contractsv1.ListContractsResponse](t)(outsider.ListContracts(ctx, connect.NewRequest(&contractsv1.ListContractsRequest{MinPosition: d.Position})))
	if len(l.Contracts) != 0 {
		t.Fatalf("outsider lists %v", l.Contracts)
	}
}

func TestRetriedRequestsApplyOnce(t *testing.T) {
	p := start(t)
	customer := p.client("acme", "org-admin")
	req := &contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "t", RequestId: "draft-42"}
	a := must[contractsv1.DraftContractResponse](t)(customer.DraftContract(ctx, connect.NewRequest(req)))
	b := must[contractsv1.DraftContractResponse](t)(customer.DraftContract(ctx, connect.NewRequest(req)))
	if a.ContractId != b.ContractId || a.Position != b.Position {
		t.Fatalf("retried draft: %v then %v", a, b)
	}
	sign := &contractsv1.SignContractRequest{ContractId: a.ContractId, RequestId: "sign-1"}
	s1 := must[contractsv1.SignContractResponse](t)(customer.SignContract(ctx, connect.NewRequest(sign)))
	s2 := must[contractsv1.SignContractResponse](t)(customer.SignContract(ctx, connect.NewRequest(sign)))
	if s1.Position != s2.Position {
		t.Fatalf("retried sign answered %d then %d", s1.Position, s2.Position)
	}
	if last := lastPosition(t, p.store); last != s1.Position {
		t.Fatalf("stream at %d, want %d: a retry appended", last, s1.Position)
	}
	// The same key from the other party is its own request.
	s3 := must[contractsv1.SignContractResponse](t)(p.client("itsec", "org-admin").SignContract(ctx, connect.NewRequest(sign)))
	if s3.Position <= s1.Position || !s3.Activated {
		t.Fatalf("the provider's sign with the customer's key = %v; want it applied, activating", s3)
	}
}

// Two instances of the service with their own caches: without retries the
// stale one reports the conflict as aborted; with retries both succeed.
func TestConcurrentChangesConflict(t *testing.T) {
	p := start(t)
	_, otherURL := p.serve(contracts.Deps{Retries: -1, ReadWait: time.Second})
	a := p.client("acme", "org-admin")
	b := p.clientAt(otherURL, p.token("acme", "org-admin"))
	d := draft(t, a)
	add := func(c contractsv1connect.ContractServiceClient, n int) error {
		_, err := c.AddRequirement(ctx, connect.NewRequest(&contractsv1.AddRequirementRequest{ContractId: d.ContractId, Requirement: &contractsv1.Requirement{RequirementId: fmt.Sprintf("R-%d", n), Text: "t"}}))
		return err
	}
	if err := add(b, 0); err != nil { // b caches the contract
		t.Fatal(err)
	}
	if err := add(a, 1); err != nil { // a moves it on
		t.Fatal(err)
	}
	code(t, connect.CodeAborted, add(b, 2))

	// The retrying instance absorbs concurrent writers.
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() { errs <- add(a, 100+i) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatalf("concurrent add: %v", err)
		}
	}
	c := get(t, a, d.ContractId, lastPosition(t, p.store))
	if n := len(c.Current.Terms.Requirements); n != 22 {
		t.Fatalf("%d requirements, want 22", n)
	}
}
