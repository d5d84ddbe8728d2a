package e2e

import (
	"context"
	"testing"

	"connectrpc.com/connect"

	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
)

// An integrator's first contract: two orgs draft and sign it, the platform
// is restarted, and everything is still there.
func TestContractSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := dataDir(t)
	p := up(t, dir)
	acme, itsec := p.contracts(t, "acme", "org-admin"), p.contracts(t, "itsec", "contract-manager")

	d, err := acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed SOC", RequestId: "e2e-1"}))
	if err != nil {
		t.Fatal(err)
	}
	id := d.Msg.ContractId
	if _, err := acme.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id})); err != nil {
		t.Fatal(err)
	}
	s, err := itsec.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id}))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Msg.Activated {
		t.Fatal("second signature did not activate the contract")
	}
	p.stop(t)

	p = up(t, dir)
	acme = p.contracts(t, "acme", "org-admin")
	got, err := acme.GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: id, MinPosition: s.Msg.Position}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Msg.Contract.Status != contractsv1.ContractStatus_CONTRACT_STATUS_ACTIVE {
		t.Fatalf("after restart status = %v", got.Msg.Contract.Status)
	}
	// The retried draft after the restart finds the same contract.
	again, err := acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Managed SOC", RequestId: "e2e-1"}))
	if err != nil || again.Msg.ContractId != id {
		t.Fatalf("retried draft after restart = %v, %v; want contract %s", again, err, id)
	}
	// An outsider finds nothing.
	_, err = p.contracts(t, "evil", "org-admin").GetContract(ctx, connect.NewRequest(&contractsv1.GetContractRequest{ContractId: id}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Fatalf("outsider got %v, want not_found", err)
	}
}
