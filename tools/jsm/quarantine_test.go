package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pglocal"
)

// A message published straight to the stream with a 6 kB correlation id is
// set aside by every projection, and `jsm quarantine` shows it to the
// operator with the reason.
func TestQuarantineCommandListsWhatProjectionsSetAside(t *testing.T) {
	if _, err := pglocal.BinDir(); err != nil {
		t.Fatalf("make test installs PostgreSQL first: %v", err)
	}
	dataDir := filepath.Join(t.TempDir(), "data")
	e, _ := startUp(t, dataDir)
	op, err := mintToken(tokenConfig{DataDir: dataDir, Org: "platform", User: "ops", Roles: []string{operatorRole}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	server := []string{"--server", e.HTTP, "--token", op}
	if out, err := jsm(t, append([]string{"quarantine"}, server...)...); err != nil || !strings.Contains(out, "no event in quarantine") {
		t.Fatalf("jsm quarantine on a clean platform: %v\n%s", err, out)
	}

	// As the operator: only NATS's admin user may write to any subject.
	secrets, err := natsauth.LoadOrCreate(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	admin := natsx.Credentials{User: natsauth.AdminUser, Password: secrets.Passwords[natsauth.AdminUser]}
	nc, err := nats.Connect(e.NATS, admin.Options()...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// Not through the API, which refuses it: straight to the stream.
	m := &nats.Msg{Subject: event.Subject("contracts.contract", "c-poison"), Header: nats.Header{
		event.HeaderID: {event.NewID()}, event.HeaderType: {"jsm.contracts.v1.ContractDrafted"}, event.HeaderCorrelation: {strings.Repeat("c", 6<<10)},
	}}
	js, err := nc.JetStream()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var out string
	for {
		out, err = jsm(t, append(append([]string{"quarantine"}, server...), "trail")...)
		if err == nil && strings.Contains(out, "correlation is 6144 bytes") || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !strings.Contains(out, "PROJECTION") || !strings.Contains(out, "trail") || !strings.Contains(out, "correlation is 6144 bytes") {
		t.Fatalf("jsm quarantine trail: %v\n%s", err, out)
	}
}
