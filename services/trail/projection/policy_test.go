package projection

import (
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// The trail's signature policy, event by event: which are logged (and
// with which signer) and which quarantined, for why.
func TestSignaturePolicy(t *testing.T) {
	key := func(area string) (*eventsig.Signer, string) {
		skey, vkey, err := eventsig.GenerateKey(area)
		if err != nil {
			t.Fatal(err)
		}
		s, err := eventsig.NewSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		return s, vkey
	}
	contracts, contractsPub := key("contracts")
	incidents, incidentsPub := key("incidents")
	stranger, _ := key("contracts")
	pinned, err := eventsig.ParseKeys(contractsPub + " " + incidentsPub)
	if err != nil {
		t.Fatal(err)
	}
	ev := func(pos uint64, aggregateType string, s *eventsig.Signer) event.Event {
		e := event.Event{Envelope: event.Envelope{ID: "e" + string(rune('a'+pos)), Type: "t", AggregateType: aggregateType, AggregateID: "x",
			Time: time.Unix(1_800_000_000, int64(pos)).UTC(), SchemaVersion: 1}, Data: []byte{byte(pos)}, Position: pos}
		if s != nil {
			if err := s.Sign(&e); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	for _, tc := range []struct {
		name   string
		policy Log
		event  event.Event
		signer string          // logged with this signer ...
		reason eventsig.Reason // ... or quarantined for this
	}{
		{"no keys pinned: a signed event is logged unattributed", Log{}, ev(1, "contracts.contract", contracts), "", ""},
		{"no keys pinned: an unsigned event is logged", Log{}, ev(1, "contracts.contract", nil), "", ""},
		{"its area's key", Log{Keys: pinned}, ev(1, "contracts.contract", contracts), contracts.ID(), ""},
		{"another area's pinned key", Log{Keys: pinned}, ev(1, "contracts.contract", incidents), "", eventsig.WrongArea},
		{"an unpinned key", Log{Keys: pinned}, ev(1, "contracts.contract", stranger), "", eventsig.UnknownSigner},
		{"unsigned", Log{Keys: pinned}, ev(1, "contracts.contract", nil), "", eventsig.Unsigned},
		{"unsigned before signatures began", Log{Keys: pinned, SignedFrom: 5}, ev(4, "contracts.contract", nil), "", ""},
		{"unsigned once they began", Log{Keys: pinned, SignedFrom: 5}, ev(5, "contracts.contract", nil), "", eventsig.Unsigned},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows, mem, err := build(tc.policy, 0, ledger.Hashes{}, []event.Event{tc.event})
			if err != nil {
				t.Fatal(err)
			}
			if tc.reason != "" {
				if rows.n != 0 || mem.size != 0 || len(rows.quarantine) != 1 || rows.quarantine[0].Reason != tc.reason {
					t.Fatalf("logged %d, quarantined %+v; want quarantined for %s", rows.n, rows.quarantine, tc.reason)
				}
				return
			}
			if rows.n != 1 || len(rows.quarantine) != 0 {
				t.Fatalf("logged %d, quarantined %+v; want logged", rows.n, rows.quarantine)
			}
			want := tc.event
			if tc.signer == "" {
				want.Signer, want.Signature, want.TraceParent = "", nil, ""
			}
			if got := EntryOf(want); mem.frontier[0] != got.LeafHash() || got.Signer != tc.signer {
				t.Fatalf("leaf of the logged entry is not that of an entry with signer %q", tc.signer)
			}
		})
	}
}
