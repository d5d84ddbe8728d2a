// Package event defines the envelope every JSM event travels in and its
// mapping to NATS headers (CloudEvents names where one exists).
//
// The body of a JetStream message is the event as binary protobuf; everything
// needed to route, authorise and audit it without decoding the body lives in
// the headers, so the trail and access checks never need a lookup.
package event

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// Header names. ce-* follow the CloudEvents NATS binding; jsm-* are ours.
const (
	HeaderID            = nats.MsgIdHdr // "Nats-Msg-Id": the event id, also the dedupe key
	HeaderType          = "ce-type"
	HeaderSource        = "ce-source"
	HeaderTime          = "ce-time"
	HeaderSubject       = "ce-subject" // the aggregate id
	HeaderSpecVersion   = "ce-specversion"
	HeaderSchemaVersion = "jsm-schema-version"
	HeaderAggregate     = "jsm-aggregate" // the aggregate type, e.g. "contracts.contract"
	HeaderContract      = "jsm-contract"
	HeaderParties       = "jsm-parties" // "<customer org>,<provider org>"
	HeaderActorOrg      = "jsm-actor-org"
	HeaderActor         = "jsm-actor"
	HeaderActorRole     = "jsm-actor-role"
	HeaderCorrelation   = "jsm-correlation"
	HeaderCausation     = "jsm-causation"
	HeaderTraceParent   = "traceparent"
	// The appending service's signature over the event (see libs/eventsig):
	// the signer's key id ("<name>+<hash>") and the Ed25519 signature, base64.
	HeaderSigner    = "jsm-signer"
	HeaderSignature = "jsm-signature"
)

// SubjectPrefix is the root of every event subject in the JSM_EVENTS stream.
const SubjectPrefix = "jsm.evt"

// Actor is who caused an event: an org, a user of it and the role they acted in.
type Actor struct {
	Org  string
	User string
	Role string
}

// Parties are the two orgs of the contract an event belongs to.
type Parties struct {
	Customer string
	Provider string
}

// Has reports whether org is one of the parties.
func (p Parties) Has(org string) bool {
	return org != "" && (org == p.Customer || org == p.Provider)
}

// Envelope is an event's metadata.
type Envelope struct {
	ID            string
	Type          string // the protobuf full name of the body, e.g. "jsm.contracts.v1.ContractSigned"
	Source        string // the service that appended it, e.g. "/jsm/contracts"
	AggregateType string // "<area>.<aggregate>", e.g. "contracts.contract"
	AggregateID   string
	Contract      string
	Parties       Parties
	Actor         Actor
	Time          time.Time
	Correlation   string
	Causation     string // the command (or event) this event answers
	SchemaVersion int
	TraceParent   string
}

// Event is an envelope with its body and, once stored, its stream position.
type Event struct {
	Envelope
	Data     []byte // binary protobuf of the message named by Type
	Position uint64 // JSM_EVENTS stream sequence; 0 before it is stored
	// Signer and Signature are the appending service's signature over the
	// envelope and the body (libs/eventsig); empty when it signs nothing.
	Signer    string
	Signature []byte
}

// Subject is the NATS subject of an aggregate: jsm.evt.<area>.<aggregate>.<id>.
func Subject(aggregateType, aggregateID string) string {
	return SubjectPrefix + "." + aggregateType + "." + aggregateID
}

// NewID returns a fresh time-ordered id (UUIDv7).
func NewID() string {
	return uuid.Must(uuid.NewV7()).String()
}

// namespace roots the deterministic ids derived from command ids.
var namespace = uuid.MustParse("7d0c1a4e-5f0b-4d8e-9a57-1f3f8e2b6c11")

// DeriveID returns a stable id for the n-th thing derived from key, so that a
// retried command produces the same event ids and JetStream drops the copy.
func DeriveID(key string, n int) string {
	return uuid.NewSHA1(namespace, []byte(key+"#"+strconv.Itoa(n))).String()
}

// New wraps a protobuf message in an envelope; the caller fills the rest.
func New(env Envelope, msg proto.Message) (Event, error) {
	data, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return Event{}, fmt.Errorf("marshal %s: %w", msg.ProtoReflect().Descriptor().FullName(), err)
	}
	env.Type = string(msg.ProtoReflect().Descriptor().FullName())
	if env.SchemaVersion == 0 {
		env.SchemaVersion = CurrentVersion(env.Type)
	}
	return Event{Envelope: env, Data: data}, nil
}

// Msg builds the NATS message for an event.
func (e Event) Msg() *nats.Msg {
	h := make(nats.Header, 16)
	set := func(k, v string) {
		if v != "" {
			h[k] = []string{v}
		}
	}
	set(HeaderID, e.ID)
	set(HeaderSpecVersion, "1.0")
	set(HeaderType, e.Type)
	set(HeaderSource, e.Source)
	set(HeaderTime, e.Time.UTC().Format(time.RFC3339Nano))
	set(HeaderSubject, e.AggregateID)
	set(HeaderAggregate, e.AggregateType)
	set(HeaderSchemaVersion, strconv.Itoa(e.SchemaVersion))
	set(HeaderContract, e.Contract)
	if e.Parties != (Parties{}) {
		set(HeaderParties, e.Parties.Customer+","+e.Parties.Provider)
	}
	set(HeaderActorOrg, e.Actor.Org)
	set(HeaderActor, e.Actor.User)
	set(HeaderActorRole, e.Actor.Role)
	set(HeaderCorrelation, e.Correlation)
	set(HeaderCausation, e.Causation)
	set(HeaderTraceParent, e.TraceParent)
	set(HeaderSigner, e.Signer)
	if len(e.Signature) > 0 {
		set(HeaderSignature, base64.StdEncoding.EncodeToString(e.Signature))
	}
	return &nats.Msg{
		Subject: Subject(e.AggregateType, e.AggregateID),
		Header:  h,
		Data:    e.Data,
	}
}

// ErrMalformed marks a message that is not a JSM event.
var ErrMalformed = errors.New("malformed event")

// FromMsg reads an event back from a NATS message. It never fails on odd
// extra headers; it fails when the essentials (id, type) are missing or a
// header breaks its bounds (see Envelope.Check): whoever published that, it
// is not an event any consumer could keep.
func FromMsg(m *nats.Msg, position uint64) (Event, error) {
	get := func(k string) string {
		if v := m.Header[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	e := Event{Data: m.Data, Position: position}
	e.ID = get(HeaderID)
	e.Type = get(HeaderType)
	if e.ID == "" || e.Type == "" {
		return Event{}, fmt.Errorf("%w: subject %s position %d lacks id or type", ErrMalformed, m.Subject, position)
	}
	e.Source = get(HeaderSource)
	e.AggregateType = get(HeaderAggregate)
	e.AggregateID = get(HeaderSubject)
	e.Contract = get(HeaderContract)
	if c, p, ok := strings.Cut(get(HeaderParties), ","); ok {
		e.Parties = Parties{Customer: c, Provider: p}
	}
	e.Actor = Actor{Org: get(HeaderActorOrg), User: get(HeaderActor), Role: get(HeaderActorRole)}
	e.Correlation = get(HeaderCorrelation)
	e.Causation = get(HeaderCausation)
	e.TraceParent = get(HeaderTraceParent)
	e.Signer = get(HeaderSigner)
	if sig := get(HeaderSignature); sig != "" {
		// A signature that does not decode is kept as its text's bytes: it
		// then fails verification, which names it, rather than the event
		// looking unsigned.
		var err error
		if e.Signature, err = base64.StdEncoding.DecodeString(sig); err != nil {
			e.Signature = []byte(sig)
		}
	}
	if t := get(HeaderTime); t != "" {
		ts, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return Event{}, fmt.Errorf("%w: time %.40q is not RFC 3339", ErrMalformed, t)
		}
		e.Time = ts
	}
	e.SchemaVersion = 1
	if v := get(HeaderSchemaVersion); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return Event{}, fmt.Errorf("%w: schema version %q", ErrMalformed, v)
		}
		e.SchemaVersion = n
	}
	if err := e.Envelope.Check(); err != nil {
		return Event{}, fmt.Errorf("%w: subject %s position %d: %w", ErrMalformed, m.Subject, position, err)
	}
	return e, nil
}

// Decode unmarshals the body into a new message of the registered type named
// by the envelope, first upcasting a body stored at an older schema version.
// The generated package of the type must be linked in.
func (e Event) Decode() (proto.Message, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(e.Type))
	if err != nil {
		return nil, fmt.Errorf("event %s: %w: unknown type %q: %w", e.ID, ErrUndecodable, e.Type, err)
	}
	data, err := upcast(e.Type, e.SchemaVersion, e.Data)
	if err != nil {
		if !errors.Is(err, ErrNewerSchema) {
			err = fmt.Errorf("%w: %w", ErrUndecodable, err)
		}
		return nil, fmt.Errorf("event %s: %w", e.ID, err)
	}
	msg := mt.New().Interface()
	if err := proto.Unmarshal(data, msg); err != nil {
		return nil, fmt.Errorf("event %s: %w: decode %s: %w", e.ID, ErrUndecodable, e.Type, err)
	}
	return msg, nil
}

// ErrUndecodable marks a body that no retry will decode: an unknown type, a
// body that is not its type's protobuf, a failing upcaster. An event of a
// newer schema (ErrNewerSchema) is not one of them: newer code reads it.
var ErrUndecodable = errors.New("undecodable event")

// An Upcaster turns the body of an event stored at one schema version into
// the body of the next version of the same type. Most changes need none:
// protobuf reads old bodies as they are, and `buf breaking` keeps it so. An
// upcaster is for a change of meaning (a field's unit, a split value); a
// renamed or reshaped event is a new event type. An upcaster returns a new
// slice and leaves body alone: it is the stored event's own bytes.
type Upcaster func(body []byte) ([]byte, error)

var (
	upcastersMu sync.RWMutex
	upcasters   = map[string][]Upcaster{} // type -> upcaster from version i+1 to i+2
)

// RegisterUpcaster adds the step from version from to from+1 of the event
// type typ (its protobuf full name). Steps are registered in order, from 1,
// at init time; the type's current version is then from+1.
func RegisterUpcaster(typ string, from int, up Upcaster) {
	upcastersMu.Lock()
	defer upcastersMu.Unlock()
	if from != len(upcasters[typ])+1 {
		panic(fmt.Sprintf("event: upcaster of %s from version %d registered after %d steps", typ, from, len(upcasters[typ])))
	}
	upcasters[typ] = append(upcasters[typ], up)
}

// CurrentVersion is the schema version New stamps on events of typ.
func CurrentVersion(typ string) int {
	upcastersMu.RLock()
	defer upcastersMu.RUnlock()
	return len(upcasters[typ]) + 1
}

// ErrNewerSchema marks an event written by a newer version of the code than
// this one: reading it as an older version could misread it.
var ErrNewerSchema = errors.New("event schema newer than this code knows")

func upcast(typ string, version int, data []byte) ([]byte, error) {
	upcastersMu.RLock()
	steps := upcasters[typ]
	upcastersMu.RUnlock()
	if version > len(steps)+1 {
		return nil, fmt.Errorf("%w: %s version %d, this code knows up to %d", ErrNewerSchema, typ, version, len(steps)+1)
	}
	for v := max(version, 1); v <= len(steps); v++ {
		var err error
		if data, err = steps[v-1](data); err != nil {
			return nil, fmt.Errorf("upcast %s from version %d: %w", typ, v, err)
		}
	}
	return data, nil
}
