// Package bench measures the patching service against the target:
// registering 50,000 assets and matching a vulnerability against them
// stays interactive. Run with make bench; sizes via JSM_BENCH_ASSETS.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/jsmplatform/jsm/libs/testkit"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/patching"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func assetCount() int {
	if n, err := strconv.Atoi(os.Getenv("JSM_BENCH_ASSETS")); err == nil && n > 0 {
		return n
	}
	return 50_000
}

// BenchmarkInventory registers the inventory through the API in requests of
// 1,000 assets (one in ten runs an affected Apache version), then registers
// five CVEs, each matched against the whole inventory. One run is the
// measurement (make bench runs it with -benchtime 1x).
func BenchmarkInventory(b *testing.B) {
	ctx := context.Background()
	n := testkit.StartNATS(b)
	pool := testkit.PostgresPool(b)
	c, err := contracts.New(ctx, contracts.Deps{Store: n.Store(), Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	p, err := patching.New(ctx, patching.Deps{Store: n.Store(), Pool: pool, SchedulerEvery: -1, ReadWait: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	srv := testkit.Serve(b, c, p)
	cust := contractsv1connect.NewContractServiceClient(http.DefaultClient, srv.URL, srv.As("acme", "org-admin"))
	prov := contractsv1connect.NewContractServiceClient(http.DefaultClient, srv.URL, srv.As("itsec", "org-admin"))
	d := testkit.Must[contractsv1.DraftContractResponse](b)(cust.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Bench"})))
	testkit.Must[contractsv1.SetServiceLevelsResponse](b)(cust.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId: d.ContractId, PatchDeadlines: []*contractsv1.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_HIGH, Within: durationpb.New(30 * 24 * time.Hour)}},
	})))
	testkit.Must[contractsv1.SignContractResponse](b)(cust.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	testkit.Must[contractsv1.SignContractResponse](b)(prov.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	patch := patchingv1connect.NewPatchServiceClient(http.DefaultClient, srv.URL, srv.As("itsec", "security-officer"))

	total := assetCount()
	var lat []time.Duration
	start := time.Now()
	var last uint64
	for i := 0; i < total; i += 1000 {
		assets := make([]*patchingv1.Asset, 0, 1000)
		for j := i; j < min(i+1000, total); j++ {
			version := "2.4.62"
			if j%10 == 0 {
				version = "2.4.57"
			}
			assets = append(assets, &patchingv1.Asset{
				AssetId: fmt.Sprintf("srv-%06d", j), Name: fmt.Sprintf("server %d", j), Environment: patchingv1.Environment_ENVIRONMENT_PRODUCTION,
				Software: []*patchingv1.Software{{Product: "Apache HTTP Server", Version: version}, {Product: "OpenSSL", Version: "3.0.13"}, {Product: "Linux", Version: "6.1.0"}},
			})
		}
		t0 := time.Now()
		res := testkit.Must[patchingv1.RegisterAssetsResponse](b)(patch.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{ContractId: d.ContractId, Assets: assets})))
		lat = append(lat, time.Since(t0))
		last = res.Position
	}
	registered := time.Since(start)
	// The inventory is matchable once the read model has it.
	testkit.Must[patchingv1.ListAssetsResponse](b)(patch.ListAssets(ctx, connect.NewRequest(&patchingv1.ListAssetsRequest{ContractId: d.ContractId, PageSize: 1, MinPosition: last})))
	projected := time.Since(start)
	slices.Sort(lat)

	// Five vulnerabilities, each matched against the whole inventory.
	var match []time.Duration
	var affected int
	for i := range 5 {
		t0 := time.Now()
		res := testkit.Must[patchingv1.RegisterVulnerabilityResponse](b)(patch.RegisterVulnerability(ctx, connect.NewRequest(&patchingv1.RegisterVulnerabilityRequest{
			ContractId: d.ContractId, CveId: fmt.Sprintf("CVE-2026-%05d", 10000+i), Severity: commonv1.Severity_SEVERITY_HIGH,
			Product: "apache http server", AffectedVersions: []string{">= 2.4.0, < 2.4.60"},
		})))
		match = append(match, time.Since(t0))
		affected = len(res.AffectedAssetIds)
	}
	if affected != total/10 {
		b.Fatalf("matched %d assets, want %d", affected, total/10)
	}
	slices.Sort(match)
	b.ReportMetric(float64(total)/registered.Seconds(), "assets/s")
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "ms/1000-assets-p50")
	b.ReportMetric(projected.Seconds(), "s-until-matchable")
	b.ReportMetric(float64(match[len(match)/2].Microseconds())/1000, "ms/match-p50")
	b.ReportMetric(float64(match[len(match)-1].Microseconds())/1000, "ms/match-max")
	b.ReportMetric(float64(affected), "affected")
}
