// Package natsauth is the one table of who may do what on NATS: a user per
// service that publishes only its own area's events (jsm.evt.<area>.>) and
// the JetStream API, KV and ack subjects it needs, an administrator, a
// system user that can disconnect clients, and the per-source identities
// of ITSM sources, which the integration service hands out through the auth
// callout. The embedded server of `jsm up`, `make cluster-up` and the
// shipped NATS configuration are all made from this table.
package natsauth

import (
	"slices"
)

const (
	// Account holds the streams, the services and the sources. It is the
	// server's global account, so data stored before users existed stays
	// where the services find it.
	Account = "$G"
	// SystemAccount is the server's system account; only SystemUser is in it.
	SystemAccount = "SYS"
	// AdminUser may do everything in Account: the host of `jsm up` (its
	// admin API rebuilds projections) and an operator's tools.
	AdminUser = "jsm-admin"
	// SystemUser lists and disconnects clients (the integration service
	// uses it to cut a disabled source off at once).
	SystemUser = "jsm-system"
	// CalloutSubject is where the server asks who a client is that no user
	// of the table matches (an ITSM source).
	CalloutSubject = "$SYS.REQ.USER.AUTH"
)

// Streams and buckets the permissions name (their packages own them; the
// names are repeated here so this package depends on none of them, and
// natsauth_test checks they agree).
const (
	eventStream      = "JSM_EVENTS"
	snapshotStream   = "KV_JSM_SNAPSHOTS"
	snapshotBucket   = "JSM_SNAPSHOTS"
	deadLetterStream = "JSM_DEADLETTER"
	ingestStream     = "JSM_INGEST"
	ingestConsumer   = "ingest"
)

// Identity is one NATS user and what it may publish and subscribe to.
type Identity struct {
	User      string
	Account   string
	Publish   []string
	Subscribe []string
	// Responses lets the user answer a request on its reply subject (the
	// auth callout's answers).
	Responses bool
}

// InboxPrefix is the inbox prefix of user's connections: each identity may
// only read its own replies, not those of another service.
func InboxPrefix(user string) string { return "_INBOX." + user }

// area says what a service does on NATS.
type area struct {
	appends  bool     // appends events of its area and keeps their snapshots
	reactors []string // durable consumers of JSM_EVENTS with dead letters
	ingest   bool     // reads JSM_INGEST and answers the auth callout
}

// areas is the table of every service. A service that is not here cannot
// connect.
var areas = map[string]area{
	"contracts":      {appends: true},
	"incidents":      {appends: true},
	"patching":       {appends: true, reactors: []string{"patching-reactions"}},
	"changeadvisory": {appends: true, reactors: []string{"changeadvisory-reactions"}},
	"audits":         {appends: true},
	"reporting":      {appends: true},
	"trail":          {}, // reads every event, appends none
	"integration":    {appends: true, ingest: true},
}

// Areas are the services' names, sorted.
func Areas() []string {
	names := make([]string, 0, len(areas))
	for n := range areas {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Service is the identity of the service named name, and whether there is one.
func Service(name string) (Identity, bool) {
	a, ok := areas[name]
	if !ok {
		return Identity{}, false
	}
	id := Identity{User: name, Account: Account, Subscribe: []string{InboxPrefix(name) + ".>"}}
	pub := []string{"$JS.API.INFO"}
	// Every service opens the event stream (the first one up creates it),
	// loads aggregates with direct gets and reads it with consumers.
	pub = append(pub, streamAdmin(eventStream)...)
	pub = append(pub, streamRead(eventStream)...)
	pub = append(pub, consumers(eventStream, ">")...)
	if a.appends {
		pub = append(pub, "jsm.evt."+name+".>")
		pub = append(pub, streamAdmin(snapshotStream)...)
		pub = append(pub,
			"$JS.API.STREAM.MSG.GET."+snapshotStream,
			"$JS.API.DIRECT.GET."+snapshotStream+".$KV."+snapshotBucket+"."+name+".>",
			"$KV."+snapshotBucket+"."+name+".>",
		)
	}
	for _, r := range a.reactors {
		pub = append(pub, "$JS.ACK."+eventStream+"."+r+".>")
		pub = append(pub, deadLetters(r)...)
	}
	if a.ingest {
		pub = append(pub, streamAdmin(ingestStream)...)
		pub = append(pub, consumers(ingestStream, ingestConsumer+".>")...)
		pub = append(pub, consumers(ingestStream, ingestConsumer)...)
		pub = append(pub, "$JS.ACK."+ingestStream+"."+ingestConsumer+".>")
		pub = append(pub, deadLetters(ingestConsumer)...)
		id.Subscribe = append(id.Subscribe, CalloutSubject)
		id.Responses = true
	}
	id.Publish = dedup(pub)
	return id, true
}

// Services are the identities of every service, sorted by name.
func Services() []Identity {
	out := make([]Identity, 0, len(areas))
	for _, n := range Areas() {
		id, _ := Service(n)
		out = append(out, id)
	}
	return out
}

// Admin may do everything in Account.
func Admin() Identity {
	return Identity{User: AdminUser, Account: Account, Publish: []string{">"}, Subscribe: []string{">"}}
}

// System may list connections and disconnect one, nothing else.
func System() Identity {
	return Identity{
		User: SystemUser, Account: SystemAccount,
		Publish:   []string{"$SYS.REQ.SERVER.PING.CONNZ", "$SYS.REQ.SERVER.*.KICK"},
		Subscribe: []string{InboxPrefix(SystemUser) + ".>"},
	}
}

// All are every identity with a password: the services, the administrator
// and the system user. Everyone else goes through the auth callout.
func All() []Identity {
	return append(Services(), Admin(), System())
}

// SourceSubject is what the source with id may publish on: its own ingest
// subjects.
func SourceSubject(id string) string { return "jsm.ingest." + id + ".>" }

// Source is the identity the auth callout gives the ITSM source with id:
// it publishes its own events and reads the acks of its publishes.
func Source(id string) Identity {
	user := "source-" + id
	return Identity{
		User:      user,
		Account:   Account,
		Publish:   []string{SourceSubject(id)},
		Subscribe: []string{InboxPrefix(user) + ".>"},
	}
}

// streamAdmin creates and updates a stream (the services create what they
// use when they start; updates only ever add what they rely on).
func streamAdmin(stream string) []string {
	return []string{
		"$JS.API.STREAM.INFO." + stream,
		"$JS.API.STREAM.CREATE." + stream,
		"$JS.API.STREAM.UPDATE." + stream,
	}
}

// streamRead reads single messages of a stream.
func streamRead(stream string) []string {
	return []string{
		"$JS.API.STREAM.MSG.GET." + stream,
		"$JS.API.DIRECT.GET." + stream,
		"$JS.API.DIRECT.GET." + stream + ".>",
	}
}

// consumers creates, reads and deletes the consumers named by the
// wildcard rest on stream, and pulls from them.
func consumers(stream, rest string) []string {
	var out []string
	for _, op := range []string{"CREATE", "DURABLE.CREATE", "INFO", "DELETE", "MSG.NEXT"} {
		out = append(out, "$JS.API.CONSUMER."+op+"."+stream+"."+rest)
	}
	return out
}

// deadLetters publishes to a consumer's dead-letter subject, in the stream
// JSM_DEADLETTER that the first one up creates.
func deadLetters(consumer string) []string {
	return append(streamAdmin(deadLetterStream), "jsm.dlq."+consumer)
}

func dedup(s []string) []string {
	out := make([]string, 0, len(s))
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
