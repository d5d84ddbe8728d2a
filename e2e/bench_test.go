package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/natsauth"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
)

func envInt(key string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(key)); err == nil {
		return v
	}
	return def
}

// BenchmarkSignContractRoundTrip measures SignContract through Connect
// against `jsm up` whose stream already holds JSM_BENCH_STREAM events
// (default 200k), at one client: p50 and p99 in ms.
func BenchmarkSignContractRoundTrip(b *testing.B) {
	ctx := context.Background()
	p := up(b, dataDir(b))
	fill(b, p, envInt("JSM_BENCH_STREAM", 200_000))

	n := envInt("JSM_BENCH_SIGNS", 2000)
	acme := p.contracts(b, "acme", "org-admin")
	ids := make([]string, n)
	for i := range ids {
		d, err := acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "bench " + strconv.Itoa(i)}))
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = d.Msg.ContractId
	}
	b.ResetTimer()
	lat := make([]time.Duration, 0, n)
	for _, id := range ids {
		start := time.Now()
		if _, err := acme.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: id})); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(q float64) float64 { return float64(lat[int(q*float64(len(lat)-1))].Microseconds()) / 1000 }
	b.ReportMetric(ms(0.50), "p50-ms")
	b.ReportMetric(ms(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
	fmt.Fprintf(os.Stderr, "SignContract round trip via jsm up, %d signs, stream prefilled: p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", n, ms(0.5), ms(0.99), ms(1))
}

// fill publishes filler events of another area straight into the stream.
// It connects as NATS's admin user, whose password jsm up keeps in its
// data dir.
func fill(b *testing.B, p *platform, events int) {
	b.Helper()
	secrets, err := natsauth.LoadOrCreate(p.dataDir)
	if err != nil {
		b.Fatal(err)
	}
	nc, err := nats.Connect(p.natsURL, nats.UserInfo(natsauth.AdminUser, secrets.Passwords[natsauth.AdminUser]), nats.CustomInboxPrefix(natsauth.InboxPrefix(natsauth.AdminUser)))
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4000))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 512)
	for i := range events {
		m := nats.NewMsg(fmt.Sprintf("jsm.evt.bench.filler.%d", i%10_000))
		m.Header.Set(nats.MsgIdHdr, fmt.Sprintf("filler-%d", i))
		m.Header.Set("ce-type", "google.protobuf.BytesValue")
		m.Data = payload
		if _, err := js.PublishMsgAsync(m); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(2 * time.Minute):
		b.Fatal("filling the stream took over 2 minutes")
	}
}
