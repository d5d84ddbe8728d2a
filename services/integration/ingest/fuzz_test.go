package ingest

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"

	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"
	"github.com/nats-io/nats.go"

	"github.com/jsmplatform/jsm/libs/event"
	"github.com/jsmplatform/jsm/libs/reactor"
)

// accepted checks what the decoders let through: in the bounds of every
// attribute that reaches the inbox's key or the platform's headers.
func accepted(t *testing.T, id, source, typ string) {
	t.Helper()
	if event.CheckClientRef("id", id) != nil || event.CheckName("source", source, event.MaxNameLen) != nil || event.CheckToken("type", typ, event.MaxNameLen) != nil {
		t.Fatalf("accepted a CloudEvent out of bounds: id %d bytes, source %d, type %d", len(id), len(source), len(typ))
	}
}

// FuzzDecodeNATS feeds the NATS transport's decoder the headers and body
// anyone allowed to publish on jsm.ingest.<source>.> could send: it must not
// panic, and what it accepts is in bounds.
func FuzzDecodeNATS(f *testing.F) {
	f.Add("n-1", "https://itsm.example.com", "jsm.incident.report", "1.0", "application/json", []byte(`{"title":"x"}`))
	f.Add(strings.Repeat("x", 6<<10), "s", "t", "1.0", "application/json", []byte(`{}`))
	f.Add("", "", "", "", "application/cloudevents+json", []byte(`{"specversion":"1.0","id":"a b","source":"s","type":"t"}`))
	f.Add("", "", "", "", "application/cloudevents+json", []byte(`{"specversion":"1.0","id":"`+strings.Repeat("i", 200)+`","source":"s","type":"t"}`))
	f.Add("id", "s\x00", "t\n", "0.3", "text/plain", []byte("garbage"))
	f.Fuzz(func(t *testing.T, id, source, typ, spec, contentType string, data []byte) {
		h := nats.Header{}
		for k, v := range map[string]string{"ce-id": id, "ce-source": source, "ce-type": typ, "ce-specversion": spec, "content-type": contentType} {
			if v != "" {
				h.Set(k, v)
			}
		}
		e, err := decodeNATS(context.Background(), reactor.Message{Subject: Subject("soc") + ".x", Header: h, Data: data})
		if err != nil {
			if !strings.HasPrefix(err.Error(), "malformed-cloudevent: ") {
				t.Fatalf("refused without the reason type: %v", err)
			}
			return
		}
		accepted(t, e.ID(), e.Source(), e.Type())
	})
}

// FuzzDecodeHTTP feeds the HTTP transport's decoding (structured, binary
// and batch mode, then validate) any body and content type.
func FuzzDecodeHTTP(f *testing.F) {
	f.Add("application/cloudevents+json", "", []byte(`{"specversion":"1.0","id":"h-1","source":"s","type":"t","data":{}}`))
	f.Add("application/cloudevents-batch+json", "", []byte(`[{"specversion":"1.0","id":"`+strings.Repeat("x", 6<<10)+`","source":"s","type":"t"}]`))
	f.Add("application/json", strings.Repeat("x", 6<<10), []byte(`{}`))
	f.Add("application/cloudevents+json", "", []byte(`{"specversion":"1.0","id":"\u0000","source":"s","type":"t"}`))
	f.Add("application/cloudevents-batch+json", "", []byte(`[1,2,{}]`))
	f.Fuzz(func(t *testing.T, contentType, ceID string, body []byte) {
		r, err := http.NewRequest(http.MethodPost, "http://x/ingest/v1/sources/soc/events", bytes.NewReader(body))
		if err != nil {
			return
		}
		r.Header.Set("Content-Type", contentType)
		if ceID != "" {
			r.Header.Set("Ce-Id", ceID)
			r.Header.Set("Ce-Specversion", "1.0")
			r.Header.Set("Ce-Source", "s")
			r.Header.Set("Ce-Type", "t")
		}
		if contentType == "application/cloudevents-batch+json" {
			events, err := cehttp.NewEventsFromHTTPRequest(r)
			if err != nil {
				return
			}
			for _, e := range events {
				if validate(e) == nil {
					accepted(t, e.ID(), e.Source(), e.Type())
				}
			}
			return
		}
		e, err := cehttp.NewEventFromHTTPRequest(r)
		if err != nil || validate(*e) != nil {
			return
		}
		accepted(t, e.ID(), e.Source(), e.Type())
	})
}
