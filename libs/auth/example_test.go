package auth_test

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/jsmplatform/jsm/libs/auth"
)

func ExampleMint() {
	_, key, _ := ed25519.GenerateKey(rand.Reader) // in dev: auth.LoadOrCreateDevKey(stateDir)
	token, _ := auth.Mint(key, auth.DevIssuer, auth.DevAudience,
		auth.Principal{Org: "acme", User: "alice", Roles: []string{"provider-admin"}}, time.Hour)

	v, _ := auth.NewVerifier(auth.VerifierConfig{
		Issuer:   auth.DevIssuer,
		Audience: auth.DevAudience,
		Keys:     []crypto.PublicKey{key.Public()},
	})
	p, err := v.Verify(token)
	fmt.Println(p.Org, p.User, p.HasRole("provider-admin"), err)
	// Output: acme alice true <nil>
}

func ExamplePolicy_Allows() {
	policy := auth.Policy{
		Procedures: map[string]auth.Permission{
			"/jsm.contracts.v1.ContractService/SignContract": "contracts.write",
			"/grpc.health.v1.Health/Check":                   auth.Public,
		},
		Roles: map[string][]auth.Permission{
			"provider-admin": {"contracts.read", "contracts.write"},
			"viewer":         {"contracts.read"},
		},
	}
	perm, _ := policy.Permission("/jsm.contracts.v1.ContractService/SignContract")
	fmt.Println(policy.Allows([]string{"viewer"}, perm))
	fmt.Println(policy.Allows([]string{"viewer", "provider-admin"}, perm))
	// Output:
	// false
	// true
}
