package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/natsauth"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1/contractsv1connect"
	incidentsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/incidents/v1/incidentsv1connect"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	patchingv1 "github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/patching/v1/patchingv1connect"
	"github.com/jsmplatform/jsm/tools/cluster"
)

// TestFaults runs the production topology (`jsm cluster up`: three NATS
// nodes with R3 and sync_interval always, PostgreSQL, every service as its
// own process) under a steady load of commands from concurrent clients and
// injects faults phase by phase. Each phase checks what it is about; the
// last ones check that nothing acknowledged was lost: every acked command's
// event is in the stream exactly once, every read model equals one rebuilt
// from the stream into an empty database, and the trail stays consistent
// with the checkpoint a witness took before the first fault.
func TestFaults(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Building eight binaries and starting the cluster takes minutes on a
	// machine busy with other tests: that is no fault of the cluster, so it
	// has a budget of its own, apart from the faults'.
	startCtx, cancelStart := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelStart()
	c, err := cluster.Start(startCtx, cluster.Config{
		Root: root, DataDir: dataDir(t), BinDir: t.TempDir(), Attached: true,
		Logger: testLogger(t),
		// The load runs as fast as the cluster answers: faults are measured
		// here, not the rate limits.
		Env: []string{"JSM_RATE_LIMIT=0", "JSM_ORG_RATE_LIMIT=0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(context.Background(), false); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		if t.Failed() {
			for _, p := range append(slices.Clone(c.NATS), c.Services...) {
				b, _ := os.ReadFile(p.Log)
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- %s (%s), last lines:\n%s", p.Name, p.Log, b)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	// The test watches the stream as the operator does: NATS's admin user.
	admin, err := c.NATSCredentials(natsauth.AdminUser)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.NATSURLs, append(admin.Options(), nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	f := &faults{t: t, c: c, js: js, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0))}
	f.tokens(t)

	// A witness keeps a checkpoint from before any fault.
	l := f.startLoad(ctx, 4)
	l.waitAcks(t, 20, 30*time.Second)
	witness := filepath.Join(t.TempDir(), "witness.json")
	f.witness(t, witness)

	t.Run("AckedLedger", func(t *testing.T) {
		// SIGKILL and SIGSTOP/SIGCONT on random NATS nodes and services, one
		// at a time, under load; a killed process comes back after a moment.
		before := l.count()
		var targets []*cluster.Proc
		targets = append(append(targets, c.NATS...), c.Services...)
		deadline := time.Now().Add(20 * time.Second)
		var injected []string
		for time.Now().Before(deadline) {
			p := targets[f.rnd.IntN(len(targets))]
			down := time.Duration(500+f.rnd.IntN(1500)) * time.Millisecond
			if f.rnd.IntN(2) == 0 {
				injected = append(injected, "SIGKILL "+p.Name)
				f.must(p.Kill())
				time.Sleep(down)
				f.restart(ctx, p)
			} else {
				injected = append(injected, fmt.Sprintf("SIGSTOP %s %v", p.Name, down.Round(time.Millisecond)))
				f.must(p.Signal(syscall.SIGSTOP))
				time.Sleep(down)
				f.must(p.Signal(syscall.SIGCONT))
				f.healthy(ctx, p)
			}
			time.Sleep(300 * time.Millisecond)
		}
		t.Logf("load: %d commands acked during %d faults: %s", l.count()-before, len(injected), strings.Join(injected, ", "))
		if l.count()-before < 20 {
			t.Fatalf("only %d commands acked while faults were injected", l.count()-before)
		}
	})

	t.Run("StreamLeaderKilled", func(t *testing.T) {
		// The leader of JSM_EVENTS dies during appends: the two others
		// elect a new one; clients see a bounded pause.
		for round := range 2 {
			leader := f.streamLeader(ctx)
			before := l.count()
			time.Sleep(time.Second)
			f.must(leader.Kill())
			killed := time.Now()
			l.waitAcks(t, l.count()+10, 30*time.Second)
			time.Sleep(2 * time.Second)
			f.restart(ctx, leader)
			pause := l.maxGap(killed.Add(-time.Second), time.Now())
			t.Logf("round %d: killed leader %s; %d commands acked; longest pause between acks after the kill %v; new leader %s",
				round+1, leader.Name, l.count()-before, pause.Round(time.Millisecond), f.streamLeader(ctx).Name)
			if pause > 10*time.Second {
				t.Errorf("clients paused %v after the leader was killed (want < 10s)", pause)
			}
		}
	})

	t.Run("ConsumerKilledMidBatch", func(t *testing.T) {
		// The trail and reporting fall behind (paused), then die while they
		// catch up in large batches.
		// A round counts when the checkpoint the killed process left is
		// short of where the stream was when it resumed: it died before
		// committing its catch-up. A machine fast enough to catch up within
		// the few milliseconds gets another round.
		before := l.count()
		for _, name := range []string{"trail", "reporting"} {
			p := c.Service(name)
			midBatch := false
			for round := 1; round <= 3 && !midBatch; round++ {
				f.must(p.Signal(syscall.SIGSTOP))
				time.Sleep(3 * time.Second)
				behind, target := f.behind(ctx, name), f.lastPosition(ctx)
				f.must(p.Signal(syscall.SIGCONT))
				time.Sleep(time.Duration(20+f.rnd.IntN(60)) * time.Millisecond)
				f.must(p.Kill())
				at := f.checkpoint(ctx, name)
				midBatch = behind > 0 && at < target
				f.restart(ctx, p)
				t.Logf("%s, round %d: %d events behind when resumed, SIGKILLed while catching up (checkpoint left at %d of %d: mid-catch-up %v), restarted",
					name, round, behind, at, target, midBatch)
			}
			if !midBatch {
				t.Errorf("%s caught up within milliseconds three times: never killed mid-catch-up", name)
			}
		}
		t.Logf("load: %d commands acked meanwhile", l.count()-before)
	})

	t.Run("PostgresImmediateStop", func(t *testing.T) {
		pg, err := c.Postgres()
		if err != nil {
			t.Fatal(err)
		}
		before := l.count()
		f.must(pg.Kill()) // pg_ctl -m immediate
		time.Sleep(3 * time.Second)
		if err := c.StartPostgres(ctx); err != nil {
			t.Fatal(err)
		}
		for _, p := range c.Services {
			f.healthy(ctx, p)
		}
		l.waitAcks(t, l.count()+10, 30*time.Second)
		// Every read model resumes from its checkpoint and catches up.
		restarted, at := time.Now(), f.lastPosition(ctx)
		conn, err := pgx.Connect(ctx, c.DSN)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		waitCaughtUp(ctx, t, conn, len(c.Services), at)
		t.Logf("PostgreSQL stopped (immediate) for 3s and restarted; %d commands acked meanwhile and after; every read model past position %d %v later",
			l.count()-before, at, time.Since(restarted).Round(time.Millisecond))
	})

	t.Run("PoisonMessage", func(t *testing.T) {
		before := l.count()
		f.poison(ctx, t)
		t.Logf("load: %d commands acked meanwhile", l.count()-before)
	})

	acked := l.stop(t)
	t.Logf("load: %d clients, %d commands acked in all, %d retries after errors, longest command %v",
		l.clients, len(acked), l.retries(), l.longest().Round(time.Millisecond))

	t.Run("IngestAcrossProcesses", func(t *testing.T) {
		// The integration process gives an ITSM event's command to the
		// incidents process, with a token every service of the cluster trusts.
		f.ingest(ctx, t)
	})
	t.Run("StreamHasEveryAckedCommandOnce", func(t *testing.T) {
		f.checkStream(ctx, t, acked)
	})
	t.Run("ProjectionsEqualRebuild", func(t *testing.T) {
		f.checkRebuild(ctx, t)
	})
	t.Run("TrailVerifies", func(t *testing.T) {
		out := f.witness(t, witness)
		t.Log(strings.TrimSpace(out))
	})
}

type faults struct {
	t   *testing.T
	c   *cluster.Cluster
	js  jetstream.JetStream
	rnd *rand.Rand

	acme, itsec, auditor string
}

func (f *faults) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *faults) tokens(t *testing.T) {
	key, err := auth.LoadOrCreateDevKey(f.c.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	mint := func(org string, roles ...string) string {
		tok, err := auth.Mint(key, auth.DevIssuer, auth.DevAudience, auth.Principal{Org: org, User: org + "-user", Roles: roles}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.acme, f.itsec, f.auditor = mint("acme", "org-admin"), mint("itsec", "org-admin"), mint("itsec", "auditor")
}

// restart starts a killed process again and waits until it is ready.
func (f *faults) restart(ctx context.Context, p *cluster.Proc) {
	f.t.Helper()
	f.must(f.c.Launch(p))
	f.healthy(ctx, p)
}

func (f *faults) healthy(ctx context.Context, p *cluster.Proc) {
	f.t.Helper()
	f.must(f.c.WaitHealthy(ctx, p, time.Minute))
}

// streamLeader is the NATS node leading JSM_EVENTS.
func (f *faults) streamLeader(ctx context.Context) *cluster.Proc {
	f.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		s, err := f.js.Stream(ctx, "JSM_EVENTS")
		if err != nil {
			continue
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil {
			continue
		}
		for _, p := range f.c.NATS {
			if p.Name == info.Cluster.Leader {
				return p
			}
		}
	}
	f.t.Fatal("JSM_EVENTS has no leader after 30s")
	return nil
}

// behind is how many events a service's read model lags the stream.
func (f *faults) behind(ctx context.Context, schema string) uint64 {
	last := f.lastPosition(ctx)
	return last - min(last, f.checkpoint(ctx, schema))
}

// checkpoint is the lowest checkpoint of a service's projections.
func (f *faults) checkpoint(ctx context.Context, schema string) uint64 {
	f.t.Helper()
	conn, err := pgx.Connect(ctx, f.c.DSN)
	f.must(err)
	defer conn.Close(ctx)
	var pos int64
	f.must(conn.QueryRow(ctx, `SELECT coalesce(min(position), 0) FROM `+pgx.Identifier{schema, "checkpoints"}.Sanitize()).Scan(&pos))
	return uint64(pos)
}

// lastPosition asks a few times: a node may still be settling after a fault.
func (f *faults) lastPosition(ctx context.Context) uint64 {
	f.t.Helper()
	var err error
	for range 20 {
		var s jetstream.Stream
		if s, err = f.js.Stream(ctx, "JSM_EVENTS"); err == nil {
			var info *jetstream.StreamInfo
			if info, err = s.Info(ctx); err == nil {
				return info.State.LastSeq
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	f.t.Fatalf("stream info: %v", err)
	return 0
}

// witness runs `jsm trail witness` against the trail service: it checks the
// latest signed checkpoint and its consistency with the one it kept.
func (f *faults) witness(t *testing.T, state string) string {
	t.Helper()
	var out []byte
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		cmd := exec.Command(jsmBin, "trail", "witness", "--server", f.c.Service("trail").URL, "--state", state)
		cmd.Env = append(os.Environ(), "JSM_TOKEN="+f.auditor)
		out, err = cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "INCONSISTENT") {
			break
		}
	}
	if err != nil || !strings.Contains(string(out), "consistent: ") || strings.Contains(string(out), "INCONSISTENT") {
		t.Fatalf("trail witness: %v\n%s", err, out)
	}
	return string(out)
}

// poison publishes an event no handler can decode on a subject the patching
// reactions consume, then an event they handle: the first must reach the
// dead-letter subject after the bounded retries, the second must be handled.
func (f *faults) poison(ctx context.Context, t *testing.T) {
	id := fmt.Sprintf("poison-%d", time.Now().UnixNano())
	msg := nats.NewMsg("jsm.evt.patching.inventory." + id)
	msg.Header.Set(nats.MsgIdHdr, id) // an id but no type: not an event
	msg.Data = []byte{0xff, 0x00, 0x13}
	start := time.Now()
	ack, err := f.js.PublishMsg(ctx, msg)
	if err != nil {
		t.Fatal(err)
	}

	// Then a real event for the same reactions: an asset retired.
	contract := f.activeContract(ctx, t)
	patching := patchingv1connect.NewPatchServiceClient(http.DefaultClient, f.c.Service("patching").URL, connect.WithInterceptors(bearer(f.itsec)))
	if _, err := patching.RegisterAssets(ctx, connect.NewRequest(&patchingv1.RegisterAssetsRequest{
		ContractId: contract, Assets: []*patchingv1.Asset{{AssetId: "srv-1", Name: "file server"}},
	})); err != nil {
		t.Fatal(err)
	}
	retired, err := patching.RetireAsset(ctx, connect.NewRequest(&patchingv1.RetireAssetRequest{ContractId: contract, AssetId: "srv-1", Reason: "decommissioned"}))
	if err != nil {
		t.Fatal(err)
	}

	dlq, err := f.js.Stream(ctx, "JSM_DEADLETTER")
	if err != nil {
		t.Fatal(err)
	}
	var dead *jetstream.RawStreamMsg
	for deadline := time.Now().Add(45 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if dead, err = dlq.GetLastMsgForSubject(ctx, "jsm.dlq.patching-reactions"); err == nil && dead.Header.Get(nats.MsgIdHdr) == id {
			break
		}
		dead = nil
	}
	if dead == nil {
		t.Fatalf("poison message (position %d) not on jsm.dlq.patching-reactions after 45s", ack.Sequence)
	}
	took := time.Since(start)
	var handled bool
	var info *jetstream.ConsumerInfo
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && !handled; time.Sleep(100 * time.Millisecond) {
		cons, err := f.js.Consumer(ctx, "JSM_EVENTS", "patching-reactions")
		if err != nil {
			continue
		}
		if info, err = cons.Info(ctx); err == nil {
			handled = info.AckFloor.Stream >= retired.Msg.Position
		}
	}
	if !handled {
		t.Fatalf("the event after the poison (position %d) was not handled: consumer %+v", retired.Msg.Position, info)
	}
	// The patching process that gave up on it counts it on /metrics.
	const series = `jsm_reactor_dead_lettered_total{reactor="patching-reactions"} `
	var counted string
	if res, err := http.Get(f.c.Service("patching").URL + "/metrics"); err == nil {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, series); ok {
				counted = strings.TrimSpace(v)
			}
		}
	}
	if counted == "" || counted == "0" {
		t.Errorf("patching's /metrics does not count the dead letter: %s%q", series, counted)
	}
	t.Logf("poison at position %d dead-lettered after %v (reason %q, %s%s); the next event for the same reactions (position %d) handled",
		ack.Sequence, took.Round(time.Millisecond), dead.Header.Get("reason_poisoned"), series, counted, retired.Msg.Position)
}

// activeContract drafts a contract and has both parties sign it.
func (f *faults) activeContract(ctx context.Context, t *testing.T) string {
	acme := contractsv1connect.NewContractServiceClient(http.DefaultClient, f.c.Service("contracts").URL, connect.WithInterceptors(bearer(f.acme)))
	itsec := contractsv1connect.NewContractServiceClient(http.DefaultClient, f.c.Service("contracts").URL, connect.WithInterceptors(bearer(f.itsec)))
	d, err := acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Poison"}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []contractsv1connect.ContractServiceClient{acme, itsec} {
		if _, err := c.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: d.Msg.ContractId})); err != nil {
			t.Fatal(err)
		}
	}
	// The patching service learns the contract from the stream.
	patching := patchingv1connect.NewPatchServiceClient(http.DefaultClient, f.c.Service("patching").URL, connect.WithInterceptors(bearer(f.itsec)))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		_, err := patching.ListAssets(ctx, connect.NewRequest(&patchingv1.ListAssetsRequest{ContractId: d.Msg.ContractId}))
		if err == nil || time.Now().After(deadline) {
			break
		}
	}
	return d.Msg.ContractId
}

// checkStream reads the whole stream: no event id twice, every acked
// command's event at the position it was acked with, and per contract
// exactly one draft and one signature per party.
func (f *faults) checkStream(ctx context.Context, t *testing.T, acked []ack) {
	// Every replica holds the stream before it is read.
	var info *jetstream.StreamInfo
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		s, err := f.js.Stream(ctx, "JSM_EVENTS")
		if err == nil {
			info, err = s.Info(ctx)
		}
		current := err == nil && info.Cluster != nil && len(info.Cluster.Replicas) == cluster.Nodes-1
		for i := 0; current && i < len(info.Cluster.Replicas); i++ {
			r := info.Cluster.Replicas[i]
			current = r.Current && r.Lag == 0 && !r.Offline
		}
		if current {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replicas of JSM_EVENTS not current after 30s (%v): %+v", err, info)
		}
	}
	type stored struct{ id, typ, aggregate, actorOrg string }
	byPos := map[uint64]stored{}
	ids := map[string]uint64{}
	per := map[string]int{} // contract/type/actor org -> events
	// A read that fails (a node still settling after the faults) goes on
	// from the next position with a new consumer, a few times at most.
	next, failures := uint64(1), 0
	var cons jetstream.Consumer
	for uint64(len(byPos)) < info.State.Msgs {
		if cons == nil {
			var err error
			cons, err = f.js.OrderedConsumer(ctx, "JSM_EVENTS", jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: next})
			f.must(err)
		}
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		n := 0
		if err == nil {
			for m := range batch.Messages() {
				n++
				md, err := m.Metadata()
				f.must(err)
				h := m.Headers()
				s := stored{h.Get(nats.MsgIdHdr), h.Get("ce-type"), h.Get("ce-subject"), h.Get("jsm-actor-org")}
				byPos[md.Sequence.Stream] = s
				if prev, dup := ids[s.id]; dup {
					t.Errorf("event id %s at positions %d and %d", s.id, prev, md.Sequence.Stream)
				}
				ids[s.id] = md.Sequence.Stream
				per[s.aggregate+"/"+s.typ+"/"+s.actorOrg]++
				next = md.Sequence.Stream + 1
			}
			err = batch.Error()
		}
		if err != nil || n == 0 {
			if failures++; failures > 5 {
				t.Fatalf("read stream: %v after %d of %d", err, len(byPos), info.State.Msgs)
			}
			t.Logf("read stream: %v after %d of %d; again from %d", err, len(byPos), info.State.Msgs, next)
			cons = nil
			time.Sleep(500 * time.Millisecond)
		}
	}
	lost, misplaced, duplicated := 0, 0, 0
	for _, a := range acked {
		s, ok := byPos[a.Position]
		switch {
		case !ok:
			lost++
			t.Errorf("acked %s (position %d) is not in the stream", a.Request, a.Position)
		case s.aggregate != a.Contract || s.typ != a.Type:
			misplaced++
			t.Errorf("acked %s of contract %s at position %d, but there is %s of %s", a.Request, a.Contract, a.Position, s.typ, s.aggregate)
		case per[a.Contract+"/"+a.Type+"/"+a.Org] != 1:
			duplicated++
			t.Errorf("contract %s has %d %s by %s, want exactly 1", a.Contract, per[a.Contract+"/"+a.Type+"/"+a.Org], a.Type, a.Org)
		}
	}
	t.Logf("stream: %d events, %d distinct ids; of %d acked commands %d lost, %d not where acked, %d applied more than once",
		len(byPos), len(ids), len(acked), lost, misplaced, duplicated)
}

// checkRebuild runs a second instance of every service against an empty
// database, waits until both sets of read models reached the end of the
// stream, and compares every table.
func (f *faults) checkRebuild(ctx context.Context, t *testing.T) {
	pg, err := f.c.Postgres()
	f.must(err)
	f.must(cluster.CreateDatabase(ctx, pg.DSN("postgres"), "rebuild"))
	rebuildDSN := pg.DSN("rebuild")
	start := time.Now()
	var names []string
	for _, p := range slices.Clone(f.c.Services) {
		names = append(names, p.Name)
		if _, err := f.c.Spawn(ctx, p.Name, "JSM_PG_DSN="+rebuildDSN); err != nil {
			t.Fatal(err)
		}
	}
	last := f.lastPosition(ctx)
	orig, err := pgx.Connect(ctx, f.c.DSN)
	f.must(err)
	defer orig.Close(ctx)
	rebuilt, err := pgx.Connect(ctx, rebuildDSN)
	f.must(err)
	defer rebuilt.Close(ctx)
	for _, conn := range []*pgx.Conn{orig, rebuilt} {
		waitCaughtUp(ctx, t, conn, len(names), last)
	}
	t.Logf("rebuilt %d services' read models from %d events in %v", len(names), last, time.Since(start).Round(time.Millisecond))

	tables := tablesOf(ctx, t, orig)
	if got := tablesOf(ctx, t, rebuilt); !slices.Equal(got, tables) {
		t.Fatalf("tables differ:\n original %v\n rebuilt  %v", tables, got)
	}
	compared := 0
	for _, tbl := range tables {
		schema, name, _ := strings.Cut(tbl, ".")
		var q string
		switch {
		case strings.HasPrefix(name, "goose_"):
			continue // migration bookkeeping, with its own timestamps
		case name == "quarantine":
			// What each projection set aside and why; when is the wall clock's.
			q = `SELECT projection, position, event_id, type, reason FROM ` + pgx.Identifier{schema, name}.Sanitize()
		case tbl == "trail.unattributed":
			q = `SELECT position, id, type, signer, reason, detail FROM trail.unattributed`
		case name == "checkpoints":
			q = `SELECT name, position FROM ` + pgx.Identifier{schema, name}.Sanitize()
		case tbl == "trail.tree_heads":
			continue // signed at other sizes and times; compared below
		case tbl == "trail.hashes":
			// Rows are runs of records as their batches came, which differ
			// between a live build and a rebuild; their hashes, in order, may not.
			q = `SELECT string_agg(hashes, ''::bytea ORDER BY first_record) AS stored FROM trail.hashes`
		case slices.Contains([]string{"ingest.events", "ingest.refs", "webhooks.deliveries", "webhooks.attempts", "webhooks.replays"}, tbl):
			continue // what was received and sent, not a read model: a rebuild keeps it
		default:
			q = `SELECT * FROM ` + pgx.Identifier{schema, name}.Sanitize()
		}
		a, b := digest(ctx, t, orig, q), digest(ctx, t, rebuilt, q)
		if a != b {
			t.Errorf("%s differs from its rebuild: %s vs %s", tbl, a, b)
		}
		compared++
	}
	// Where both trails signed a tree of the same size, the roots agree.
	heads := func(conn *pgx.Conn) map[int64]string {
		rows, err := conn.Query(ctx, `SELECT size, encode(root, 'hex') FROM trail.tree_heads`)
		f.must(err)
		m, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (struct {
			size int64
			root string
		}, error) {
			var v struct {
				size int64
				root string
			}
			return v, r.Scan(&v.size, &v.root)
		})
		f.must(err)
		out := map[int64]string{}
		for _, v := range m {
			out[v.size] = v.root
		}
		return out
	}
	ho, hr := heads(orig), heads(rebuilt)
	shared := 0
	for size, root := range ho {
		if r, ok := hr[size]; ok {
			shared++
			if r != root {
				t.Errorf("trail root of size %d: %s, rebuilt %s", size, root, r)
			}
		}
	}
	t.Logf("%d tables equal to their rebuild; %d signed trail heads, %d of the same size in both, same roots", compared, len(ho), shared)
}

// waitCaughtUp waits until every projection of the database (every
// schema's checkpoints table: a service may keep several schemas, as the
// integration service does) is at last; services is how many services run
// against it, each with at least one projection.
func waitCaughtUp(ctx context.Context, t *testing.T, conn *pgx.Conn, services int, last uint64) {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT table_schema FROM information_schema.tables WHERE table_name = 'checkpoints' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	schemas, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(schemas) < services {
		t.Fatalf("%d schemas with checkpoints (%v) for %d services", len(schemas), schemas, services)
	}
	for _, s := range schemas {
		var pos int64
		for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			err := conn.QueryRow(ctx, `SELECT min(position) FROM `+pgx.Identifier{s, "checkpoints"}.Sanitize()).Scan(&pos)
			if err == nil && uint64(pos) >= last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s read model at %d (%v), stream at %d after 90s", s, pos, err, last)
			}
		}
	}
}

func tablesOf(ctx context.Context, t *testing.T, conn *pgx.Conn) []string {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT table_schema || '.' || table_name FROM information_schema.tables
		WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema', 'public')
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// digest is the row count and the hash of every row's text, in order.
func digest(ctx context.Context, t *testing.T, conn *pgx.Conn, query string) string {
	t.Helper()
	var n int64
	var sum string
	err := conn.QueryRow(ctx, `SELECT count(*), coalesce(md5(string_agg(r::text, E'\n' ORDER BY r::text)), '') FROM (`+query+`) r`).Scan(&n, &sum)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return fmt.Sprintf("%d rows %s", n, sum)
}

// load is clients drafting and signing contracts as fast as they are
// answered, each command with a request id and retried with the same id
// until it is acknowledged.
type load struct {
	clients int
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu     sync.Mutex
	acked  []ack
	failed []error
	tries  int
	slow   time.Duration
}

type ack struct {
	Request, Type, Contract, Org string
	Position                     uint64
	At                           time.Time
}

func (f *faults) startLoad(ctx context.Context, clients int) *load {
	ctx, cancel := context.WithCancel(ctx)
	l := &load{clients: clients, cancel: cancel}
	url := f.c.Service("contracts").URL
	// Short per-request timeouts: a request stuck on a paused process is
	// retried rather than waited for.
	hc := &http.Client{Timeout: 3 * time.Second}
	acme := contractsv1connect.NewContractServiceClient(hc, url, connect.WithInterceptors(bearer(f.acme)))
	itsec := contractsv1connect.NewContractServiceClient(hc, url, connect.WithInterceptors(bearer(f.itsec)))
	for i := range clients {
		l.wg.Go(func() {
			for j := 0; ctx.Err() == nil; j++ {
				req := fmt.Sprintf("fault-%d-%d-%d", time.Now().UnixNano(), i, j)
				var contract string
				l.do(ctx, req+"-draft", "jsm.contracts.v1.ContractDrafted", "acme", func(ctx context.Context) (string, uint64, error) {
					r, err := acme.DraftContract(ctx, connect.NewRequest(&contractsv1.DraftContractRequest{
						CustomerOrgId: "acme", ProviderOrgId: "itsec", Title: "Fault " + req, RequestId: req + "-draft",
					}))
					if err != nil {
						return "", 0, err
					}
					contract = r.Msg.ContractId
					return contract, r.Msg.Position, nil
				})
				for _, s := range []struct {
					org    string
					client contractsv1connect.ContractServiceClient
				}{{"acme", acme}, {"itsec", itsec}} {
					if contract == "" {
						break
					}
					l.do(ctx, req+"-sign-"+s.org, "jsm.contracts.v1.ContractSigned", s.org, func(ctx context.Context) (string, uint64, error) {
						r, err := s.client.SignContract(ctx, connect.NewRequest(&contractsv1.SignContractRequest{ContractId: contract, RequestId: req + "-sign-" + s.org}))
						if err != nil {
							return "", 0, err
						}
						return contract, r.Msg.Position, nil
					})
				}
			}
		})
	}
	return l
}

// do runs one command until it is acknowledged. Once the load is stopped
// it still finishes the command it began (a minute at most), so that every
// command is either acked or reported.
func (l *load) do(ctx context.Context, request, typ, org string, call func(context.Context) (string, uint64, error)) {
	began := time.Now()
	finish := context.WithoutCancel(ctx)
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(finish, 3*time.Second)
		contract, pos, err := call(rctx)
		cancel()
		if err == nil {
			l.mu.Lock()
			l.acked = append(l.acked, ack{Request: request, Type: typ, Contract: contract, Org: org, Position: pos, At: time.Now()})
			l.slow = max(l.slow, time.Since(began))
			l.mu.Unlock()
			return
		}
		switch connect.CodeOf(err) {
		case connect.CodeInvalidArgument, connect.CodeFailedPrecondition, connect.CodePermissionDenied,
			connect.CodeNotFound, connect.CodeAlreadyExists, connect.CodeUnauthenticated:
			// A retry answered as a new command: the first one was lost.
			l.mu.Lock()
			l.failed = append(l.failed, fmt.Errorf("%s (attempt %d): %w", request, attempt+1, err))
			l.mu.Unlock()
			return
		}
		l.mu.Lock()
		l.tries++
		l.mu.Unlock()
		if time.Since(began) > time.Minute {
			l.mu.Lock()
			l.failed = append(l.failed, fmt.Errorf("%s: not acked within a minute: %w", request, err))
			l.mu.Unlock()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (l *load) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

func (l *load) retries() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tries
}

func (l *load) longest() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slow
}

// waitAcks waits until n commands are acked in all.
func (l *load) waitAcks(t *testing.T, n int, max time.Duration) {
	t.Helper()
	deadline := time.Now().Add(max)
	for l.count() < n {
		if time.Now().After(deadline) {
			l.mu.Lock()
			defer l.mu.Unlock()
			t.Fatalf("%d of %d commands acked after %v; failures: %v", len(l.acked), n, max, errors.Join(l.failed...))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// maxGap is the longest time without an ack between from and to.
func (l *load) maxGap(from, to time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var at []time.Time
	for _, a := range l.acked {
		if a.At.After(from) && a.At.Before(to) {
			at = append(at, a.At)
		}
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	prev, gap := from, time.Duration(0)
	for _, a := range at {
		gap = max(gap, a.Sub(prev))
		prev = a
	}
	return max(gap, to.Sub(prev))
}

// stop ends the load once every begun command is acked, and fails the test
// for any command that was answered as a new one or never acked.
func (l *load) stop(t *testing.T) []ack {
	t.Helper()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.failed) > 0 {
		t.Errorf("%d commands failed: %v", len(l.failed), errors.Join(l.failed...))
	}
	return slices.Clone(l.acked)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// ingest registers a source on the integration process, posts a CloudEvent
// to it and finds the incident on the incidents process.
func (f *faults) ingest(ctx context.Context, t *testing.T) {
	contract := f.activeContract(ctx, t)
	ic := integrationv1connect.NewIntegrationServiceClient(http.DefaultClient, f.c.Service("integration").URL, connect.WithInterceptors(bearer(f.itsec)))
	src, err := ic.RegisterSource(ctx, connect.NewRequest(&integrationv1.RegisterSourceRequest{SourceId: "soc-tool", ContractIds: []string{contract}}))
	if err != nil {
		t.Fatal(err)
	}
	body := fmt.Sprintf(`{"specversion":"1.0","id":"evt-1","source":"https://soc.example.com","type":"jsm.incident.report","subject":%q,
		"data":{"title":"Beaconing host","severity":"SEVERITY_HIGH","aware_at":%q,"external_ref":{"system":"soc","id":"CASE-1"}}}`,
		contract, time.Now().UTC().Add(-time.Minute).Format(time.RFC3339))
	var answer struct {
		ObjectID string `json:"object_id"`
		Position uint64 `json:"position"`
	}
	// The incidents process learns the contract from the stream first; until
	// then the report is refused (and the inbox keeps that answer), so each
	// try is an event of its own.
	for try := 0; ; try++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.c.Service("integration").URL+"/ingest/v1/sources/soc-tool/events",
			strings.NewReader(strings.Replace(body, `"evt-1"`, fmt.Sprintf(`"evt-%d"`, try), 1)))
		f.must(err)
		req.Header.Set("Content-Type", "application/cloudevents+json")
		req.Header.Set("Authorization", "Bearer "+src.Msg.Secret)
		res, err := http.DefaultClient.Do(req)
		f.must(err)
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode == http.StatusOK {
			f.must(json.Unmarshal(raw, &answer))
			break
		}
		if try == 50 {
			t.Fatalf("ingest: %d %s", res.StatusCode, raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	inc := incidentsv1connect.NewIncidentServiceClient(http.DefaultClient, f.c.Service("incidents").URL, connect.WithInterceptors(bearer(f.acme)))
	got, err := inc.GetIncident(ctx, connect.NewRequest(&incidentsv1.GetIncidentRequest{IncidentId: answer.ObjectID, MinPosition: answer.Position}))
	if err != nil {
		t.Fatal(err)
	}
	if got.Msg.Incident.Title != "Beaconing host" || got.Msg.Incident.ReporterOrgId != "itsec" {
		t.Fatalf("incident %v", got.Msg.Incident)
	}
	t.Logf("an ITSM event through the integration process became incident %s on the incidents process", answer.ObjectID)
}
