package contracts_test

import (
	"context"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
)

// A real identity provider (Dex, RS256, password grant) serves JSM's users:
// its ID token calls the contracts API, with org and roles taken from
// the user's groups; a token Dex issued for another client, or a verifier
// expecting another issuer, refuses.
func TestIdentityProviderDex(t *testing.T) {
	dex := testkit.StartDex(t,
		[]testkit.DexClient{{ID: "jsm"}, {ID: "other-app"}},
		[]testkit.DexUser{
			{Email: "alice@itsec.example", Groups: []string{"staff", "org:itsec", "role:org-admin"}},
			{Email: "bob@acme.example", Groups: []string{"org:acme", "role:viewer"}},
		})
	names := auth.ClaimNames{Org: "groups", OrgPrefix: "org:", Roles: "groups", RolePrefix: "role:"}

	n := testkit.StartNATS(t)
	svc, err := contracts.New(context.Background(), contracts.Deps{Store: n.Store(), Pool: testkit.PostgresPool(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := testkit.ServeWith(t, testkit.ServeOptions{Verifier: func(c *auth.VerifierConfig) {
		c.Issuer, c.Audience, c.Keys, c.JWKSURL, c.Claims = dex.Issuer, "jsm", nil, dex.JWKSURL, names
	}}, svc)
	client := func(token string) contractsv1connect.ContractServiceClient {
		return contractsv1connect.NewContractServiceClient(http.DefaultClient, srv.URL, connect.WithInterceptors(testkit.Bearer(token)))
	}
	draft := connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed SOC"})

	alice := dex.Token("jsm", "alice@itsec.example")
	res, err := client(alice).DraftContract(context.Background(), draft)
	if err != nil {
		t.Fatalf("Dex token of an org-admin: %v", err)
	}
	got, err := client(alice).GetContract(context.Background(), connect.NewRequest(&contractsv1.GetContractRequest{ContractId: res.Msg.ContractId, MinPosition: res.Msg.Position}))
	if err != nil {
		t.Fatal(err)
	}
	if c := got.Msg.Contract; c.GetProviderOrgId() != "itsec" || c.GetTitle() != "Managed SOC" {
		t.Fatalf("contract %v", c)
	}
	// Bob's groups make him a viewer of acme: he reads, he cannot draft.
	bob := dex.Token("jsm", "bob@acme.example")
	if _, err := client(bob).DraftContract(context.Background(), draft); connect.CodeOf(err) != connect.CodePermissionDenied {
		t.Fatalf("Dex token of a viewer drafting: %v, want permission_denied", err)
	}

	// Issued by Dex, but for another client: wrong audience.
	if _, err := client(dex.Token("other-app", "alice@itsec.example")).DraftContract(context.Background(), draft); connect.CodeOf(err) != connect.CodeUnauthenticated {
		t.Fatalf("token for another audience: %v, want unauthenticated", err)
	}
	// A verifier expecting another issuer refuses Dex's token.
	v, err := auth.NewVerifier(auth.VerifierConfig{Issuer: "https://id.example", Audience: "jsm", JWKSURL: dex.JWKSURL, Claims: names})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = v.Close() })
	if _, err := v.Verify(alice); err == nil {
		t.Fatal("token of another issuer accepted")
	}
}
