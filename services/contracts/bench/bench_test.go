package bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/jsmplatform/jsm/libs/es"
	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventstore"
	"github.com/jsmplatform/jsm/libs/testkit"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/services/contracts"
	"github.com/jsmplatform/jsm/services/contracts/domain"
	readmodel "github.com/jsmplatform/jsm/services/contracts/projection"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// runner is the contracts service's es runner.
type runner = es.Runner[domain.State, domain.Command]

func perSecond(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

// percentile of sorted durations, p in [0, 1].
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// parallel calls f(k) for k in [0, total) from callers goroutines and
// returns the elapsed time; it stops at the first error.
func parallel(callers, total int, f func(k int) error) (time.Duration, error) {
	var next atomic.Int64
	var failed atomic.Bool
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for range callers {
		wg.Go(func() {
			for !failed.Load() {
				k := int(next.Add(1) - 1)
				if k >= total {
					return
				}
				if err := f(k); err != nil {
					once.Do(func() { first = fmt.Errorf("operation %d: %w", k, err) })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start), first
}

// fillStream publishes total 512-byte events over 10k subjects of another
// area, with async publishes (window 4000), so that the stream is as large
// as a busy platform's before anything is measured.
func fillStream(b *testing.B, nc *nats.Conn, total int) time.Duration {
	b.Helper()
	var failed atomic.Int64
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(4000),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 512)
	_, _ = rand.Read(payload)
	const subjects = 10_000
	subj := make([]string, subjects)
	for i := range subj {
		subj[i] = event.Subject("bench.filler", strconv.Itoa(i))
	}
	start := time.Now()
	for i := range total {
		if _, err := js.PublishAsync(subj[i%subjects], payload, jetstream.WithStallWait(10*time.Second)); err != nil {
			b.Fatalf("fill stream: %v", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(5 * time.Minute):
		b.Fatal("fill stream: acks missing after 5 minutes")
	}
	if n := failed.Load(); n > 0 {
		b.Fatalf("fill stream: %d publishes failed", n)
	}
	return time.Since(start)
}

// pipeline publishes events with the expected-last-subject-sequence header
// without waiting for each ack: at most one publish per aggregate and window
// publishes in all are in flight, and each ack gives its aggregate the
// sequence the next publish expects. This is how fast JetStream can take
// optimistic-concurrency appends from one connection.
type pipeline struct {
	subjects []string
	last     []uint64 // per aggregate: the sequence of its last event
	index    map[string]int
}

func newPipeline(subjects []string) *pipeline {
	p := &pipeline{subjects: subjects, last: make([]uint64, len(subjects)), index: make(map[string]int, len(subjects))}
	for i, s := range subjects {
		p.index[s] = i
	}
	return p
}

// run publishes total messages made by mk(aggregate, n), taking the
// aggregates in turn as their previous publish is acked.
func (p *pipeline) run(nc *nats.Conn, total, window int, mk func(agg, n int) *nats.Msg) (time.Duration, error) {
	ready := make(chan int, len(p.subjects)) // an aggregate is queued at most once
	tokens := make(chan struct{}, window)
	done := make(chan struct{})
	var settled, failed atomic.Int64
	var firstErr atomic.Pointer[error]
	// The handlers run on the ack-processing goroutine and never block:
	// the token was taken before the publish, ready has room for all.
	settle := func(i int) {
		<-tokens
		ready <- i
		if settled.Add(1) == int64(total) {
			close(done)
		}
	}
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(window),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, ack *jetstream.PubAck) {
			i := p.index[m.Subject]
			p.last[i] = ack.Sequence
			settle(i)
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			settle(p.index[m.Subject])
		}))
	if err != nil {
		return 0, err
	}
	if total == 0 {
		return 0, nil
	}
	for i := range p.subjects {
		ready <- i
	}
	start := time.Now()
	for n := range total {
		i := <-ready
		tokens <- struct{}{}
		m := mk(i, n)
		m.Header[jetstream.ExpectedLastSubjSeqHeader] = []string{strconv.FormatUint(p.last[i], 10)}
		if _, err := js.PublishMsgAsync(m); err != nil {
			return 0, fmt.Errorf("publish %d: %w", n, err)
		}
	}
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		return 0, fmt.Errorf("%d of %d acks missing after 5 minutes", int64(total)-settled.Load(), total)
	}
	elapsed := time.Since(start)
	if n := failed.Load(); n > 0 {
		return elapsed, fmt.Errorf("%d of %d publishes failed, the first: %w", n, total, *firstErr.Load())
	}
	return elapsed, nil
}

// fleet is a set of contracts, each between its own customer and provider.
type fleet struct {
	ids       []string
	customers []string
	providers []string
}

func newFleet(name string, n int) *fleet {
	f := &fleet{ids: make([]string, n), customers: make([]string, n), providers: make([]string, n)}
	for i := range n {
		f.ids[i] = event.DeriveID("bench/"+name, i)
		f.customers[i] = "org-customer-" + strconv.Itoa(i%500)
		f.providers[i] = "org-provider-" + strconv.Itoa(i%200)
	}
	return f
}

func (f *fleet) subjects() []string {
	out := make([]string, len(f.ids))
	for i, id := range f.ids {
		out[i] = event.Subject(readmodel.AggregateType, id)
	}
	return out
}

func (f *fleet) actors(i int, org string) (domain.Actor, event.Actor) {
	user := "user-" + strconv.Itoa(i%50)
	return domain.Actor{Org: domain.OrgID(org), User: user}, event.Actor{Org: org, User: user, Role: "org-admin"}
}

func (f *fleet) handle(ctx context.Context, r *runner, i int, org string, body func(domain.Actor) domain.Command) error {
	da, ea := f.actors(i, org)
	_, err := r.Handle(ctx, es.Command[domain.Command]{AggregateID: f.ids[i], Body: body(da), Actor: ea})
	return err
}

func (f *fleet) draft(ctx context.Context, r *runner, i int) error {
	return f.handle(ctx, r, i, f.customers[i], func(a domain.Actor) domain.Command {
		return domain.DraftContract{
			Actor:             a,
			ContractID:        domain.ContractID(f.ids[i]),
			Customer:          domain.OrgID(f.customers[i]),
			Provider:          domain.OrgID(f.providers[i]),
			Title:             "Managed hosting and backup " + strconv.Itoa(i),
			Reference:         "MSA-2026-" + strconv.Itoa(i),
			ServicesInScope:   []string{"hosting", "backup", "monitoring"},
			CriticalFunction:  i%3 == 0,
			TerminationNotice: 90 * 24 * time.Hour,
		}
	})
}

// contact is a command that appends one event and leaves the state's size
// unchanged (it replaces the customer's security contact), so runs with
// different numbers of callers do the same work.
func contact(org string, k int) domain.Contact {
	return domain.Contact{
		Org:   domain.OrgID(org),
		Role:  "security-officer",
		Name:  "Security Officer " + strconv.Itoa(k),
		Email: "security-" + strconv.Itoa(k) + "@example.com",
		Phone: "+41 44 000 00 00",
	}
}

func (f *fleet) assignContact(ctx context.Context, r *runner, i, k int) error {
	return f.handle(ctx, r, i, f.customers[i], func(a domain.Actor) domain.Command {
		return domain.AssignContact{Actor: a, Contact: contact(f.customers[i], k)}
	})
}

// lifecycle drafts contract i, adds 7 requirements and has both parties
// sign: 10 events, the contract ends active.
func (f *fleet) lifecycle(ctx context.Context, r *runner, i int) error {
	if err := f.draft(ctx, r, i); err != nil {
		return err
	}
	for n := range 7 {
		err := f.handle(ctx, r, i, f.customers[i], func(a domain.Actor) domain.Command {
			return domain.AddRequirement{Actor: a, Requirement: domain.Requirement{
				ID:                "REQ-" + strconv.Itoa(n+1),
				StandardReference: "ISO27001:2022 A.5." + strconv.Itoa(19+n),
				Text:              "The provider encrypts customer data at rest and in transit and reviews access quarterly.",
			}}
		})
		if err != nil {
			return err
		}
	}
	for _, org := range []string{f.customers[i], f.providers[i]} {
		err := f.handle(ctx, r, i, org, func(a domain.Actor) domain.Command {
			return domain.SignContract{Actor: a, At: time.Now()}
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// envelope is what the runner would put around an event of contract i.
func (f *fleet) envelope(i int) event.Envelope {
	_, actor := f.actors(i, f.customers[i])
	id := event.NewID()
	return event.Envelope{
		ID:            id,
		Source:        contracts.Source,
		AggregateType: readmodel.AggregateType,
		AggregateID:   f.ids[i],
		Contract:      f.ids[i],
		Parties:       event.Parties{Customer: f.customers[i], Provider: f.providers[i]},
		Actor:         actor,
		Time:          time.Now().UTC(),
		Correlation:   id,
		Causation:     id,
	}
}

// rawMsg is the message of a ready-made event, as eventstore.Append sends it.
func rawMsg(e event.Event) *nats.Msg {
	m := e.Msg()
	m.Header[jetstream.ExpectedStreamHeader] = []string{eventstore.DefaultStream}
	return m
}

// draftedMsg is a ContractDrafted event of contract i, the first event of
// the raw baseline's aggregates.
func (f *fleet) draftedMsg(i int) (*nats.Msg, error) {
	e, err := event.New(f.envelope(i), &contractsv1.ContractDrafted{
		ContractId:    f.ids[i],
		CustomerOrgId: f.customers[i],
		ProviderOrgId: f.providers[i],
		Title:         "Managed hosting and backup " + strconv.Itoa(i),
		TermsVersion:  1,
	})
	if err != nil {
		return nil, err
	}
	return rawMsg(e), nil
}

// sameBytes turns one event's message into the n-th publish to aggregate i:
// the same body and headers, with the aggregate's subject and a new event id
// (JetStream would drop a repeated id as a duplicate).
type sameBytes struct {
	data   []byte
	header nats.Header
	idBase string
}

func newSameBytes(f *fleet) (*sameBytes, error) {
	e, err := event.New(f.envelope(0), &contractsv1.ContactAssigned{
		ContractId:   f.ids[0],
		Contact:      domain.ContactToProto(contact(f.customers[0], 0)),
		TermsVersion: 1,
	})
	if err != nil {
		return nil, err
	}
	m := rawMsg(e)
	// 36 characters like the UUIDs of our events: 24 fixed, 12 counting.
	return &sameBytes{data: m.Data, header: m.Header, idBase: e.ID[:24]}, nil
}

func (s *sameBytes) msg(f *fleet, i, n int) *nats.Msg {
	h := maps.Clone(s.header)
	id := strconv.Itoa(n)
	h[event.HeaderID] = []string{s.idBase + "000000000000"[len(id):] + id}
	h[event.HeaderSubject] = []string{f.ids[i]}
	h[event.HeaderContract] = []string{f.ids[i]}
	return &nats.Msg{Subject: event.Subject(readmodel.AggregateType, f.ids[i]), Header: h, Data: s.data}
}

var errNoBaseline = errors.New("the raw baseline did not run")

// profile writes a CPU profile of the rest of the calling sub-benchmark to
// $JSM_BENCH_PROFILE/<name>.prof when that folder is set (do not combine it
// with -cpuprofile); it returns the function that stops it.
func profile(b *testing.B, name string) func() {
	dir := os.Getenv("JSM_BENCH_PROFILE")
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, strings.NewReplacer("/", "_", "=", "").Replace(name)+".prof")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
		b.Logf("cpu profile: %s", path)
	}
}
