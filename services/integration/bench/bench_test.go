// Package bench measures ingest against the figure: sustained
// ingest events/s over HTTP (batch mode) from one source into the
// incidents service, and its ratio to the raw append rate of the event
// store in the same run. Run with make bench; sizes via
// JSM_BENCH_INGEST_EVENTS (default 20,000), JSM_BENCH_INGEST_BATCH (100)
// and JSM_BENCH_INGEST_INFLIGHT (requests in flight, 4).
package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	cloudevents "github.com/cloudevents/sdk-go/v2"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/libs/testkit"
	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/incidents"
	"github.com/jsmplatform/jsm/services/integration"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func env(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func perSecond(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// parallel runs f(0..total-1) on callers goroutines and returns how long it took.
func parallel(callers, total int, f func(k int) error) (time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	start := time.Now()
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				k := next
				next++
				mu.Unlock()
				if k >= total {
					return
				}
				if err := f(k); err != nil {
					mu.Lock()
					first = err
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(start), first
}

// BenchmarkIngest posts JSM_BENCH_INGEST_EVENTS incident reports (one new
// ticket each) in batches from one source, and compares the rate with raw
// appends of the event store (one new aggregate each) in the same run.
func BenchmarkIngest(b *testing.B) {
	total, size, inflight := env("JSM_BENCH_INGEST_EVENTS", 20_000), env("JSM_BENCH_INGEST_BATCH", 100), env("JSM_BENCH_INGEST_INFLIGHT", 4)
	ctx := context.Background()
	n := testkit.StartNATS(b)
	store := n.Store()
	pool := testkit.PostgresPool(b)
	keys, err := secret.New(bytes.Repeat([]byte{3}, secret.KeySize))
	if err != nil {
		b.Fatal(err)
	}
	deps := svcmain.Deps{Store: store, Pool: pool, ReadWait: time.Minute, SchedulerEvery: -1}
	c, err := contracts.New(ctx, contracts.Deps{Store: store, Pool: pool})
	if err != nil {
		b.Fatal(err)
	}
	inc, err := incidents.New(ctx, deps)
	if err != nil {
		b.Fatal(err)
	}
	var srv *testkit.Services
	in, err := integration.New(ctx, integration.Deps{Deps: deps, Keys: keys, Limits: ingest.Limits{RatePerSource: 1e6},
		Platform: func() ingest.Platform {
			return ingest.Platform{Incidents: srv.URL, Patching: srv.URL, Changes: srv.URL, Token: srv.Mint}
		}})
	if err != nil {
		b.Fatal(err)
	}
	srv = testkit.Serve(b, c, inc, in)

	cust := contractsv1connect.NewContractServiceClient(http.DefaultClient, srv.URL, srv.As("acme", "org-admin"))
	prov := contractsv1connect.NewContractServiceClient(http.DefaultClient, srv.URL, srv.As("itsec", "org-admin"))
	d := testkit.Must[contractsv1.DraftContractResponse](b)(cust.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Bench"})))
	testkit.Must[contractsv1.SetServiceLevelsResponse](b)(cust.SetServiceLevels(ctx, connect.NewRequest(&contractsv1.SetServiceLevelsRequest{
		ContractId: d.ContractId, IncidentNotification: []*contractsv1.SeverityDeadline{{Severity: commonv1.Severity_SEVERITY_HIGH, Within: durationpb.New(4 * time.Hour)}},
	})))
	testkit.Must[contractsv1.SignContractResponse](b)(cust.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	testkit.Must[contractsv1.SignContractResponse](b)(prov.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.ContractId})))
	ic := integrationv1connect.NewIntegrationServiceClient(http.DefaultClient, srv.URL, srv.As("itsec", "org-admin"))
	reg := testkit.Must[integrationv1.RegisterSourceResponse](b)(ic.RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{SourceId: "soc", ContractIds: []string{d.ContractId}})))

	// The batches, encoded before the clock starts.
	var bodies [][]byte
	for i := 0; i < total; i += size {
		var batch []cloudevents.Event
		for j := i; j < min(i+size, total); j++ {
			e := cloudevents.NewEvent()
			e.SetID(fmt.Sprint("bench-", j))
			e.SetSource("https://itsm.example.com")
			e.SetType("jsm.incident.report")
			e.SetSubject(d.ContractId)
			if err := e.SetData(cloudevents.ApplicationJSON, map[string]any{
				"title": fmt.Sprint("Alert ", j), "severity": "SEVERITY_HIGH", "aware_at": "2026-03-02T08:30:00Z",
				"external_ref": map[string]string{"system": "siem", "id": fmt.Sprint("ALERT-", j)},
			}); err != nil {
				b.Fatal(err)
			}
			batch = append(batch, e)
		}
		body, err := json.Marshal(batch)
		if err != nil {
			b.Fatal(err)
		}
		bodies = append(bodies, body)
	}
	url := srv.URL + "/ingest/v1/sources/soc/events"
	took, err := parallel(inflight, len(bodies), func(k int) error {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(bodies[k]))
		req.Header.Set("Content-Type", cloudevents.ApplicationCloudEventsBatchJSON)
		req.Header.Set("Authorization", "Bearer "+reg.Secret)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("batch %d: %d %s", k, res.StatusCode, raw)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	ours := perSecond(total, took)

	// Raw: the store's appends of one new aggregate each, as many callers
	// as the commands ingest gives at once and as many as suit the store.
	raw := func(callers int) float64 {
		took, err := parallel(callers, total, func(k int) error {
			e, err := event.New(event.Envelope{ID: event.NewID(), Source: "/bench", AggregateType: "bench.raw", AggregateID: fmt.Sprint(callers, "-", k),
				Contract: d.ContractId, Parties: event.Parties{Customer: "acme", Provider: "itsec"}, Actor: event.Actor{Org: "itsec", User: "bench"}, Time: time.Now()}, wrapperspb.String("alert"))
			if err != nil {
				return err
			}
			_, err = store.Append(ctx, 0, e)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return perSecond(total, took)
	}
	rawSame, rawBest := raw(inflight), raw(64)
	b.ReportMetric(ours, "ingested/s")
	b.ReportMetric(rawSame, "raw-appends/s")
	b.ReportMetric(rawBest, "raw-appends-64/s")
	b.ReportMetric(ours/rawSame, "ratio")
	b.ReportMetric(ours/rawBest, "ratio-64")
	b.Logf("%d events in batches of %d, %d requests in flight: %.0f events/s; raw appends %.0f/s (%d callers), %.0f/s (64): ratio %.2f / %.2f",
		total, size, inflight, ours, rawSame, inflight, rawBest, ours/rawSame, ours/rawBest)
}
