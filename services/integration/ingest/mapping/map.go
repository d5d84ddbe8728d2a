package mapping

import (
	"bytes"
	"encoding/json"
	"mime"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/protobuf/types/known/timestamppb"

	commonv1 "github.com/jsmplatform/jsm/proto/gen/jsm/common/v1"
	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
)

// Map turns event e of a source with mapping m into the Action it asks
// for. Every error is a *RejectError: mapping depends on nothing but the
// event, so an event that does not map now never will.
func Map(m integrationv1.Mapping, e event.Event) (Action, error) {
	contract, err := contractOf(e)
	if err != nil {
		return Action{}, err
	}
	data, err := jsonData(e)
	if err != nil {
		return Action{}, err
	}
	switch m {
	case integrationv1.Mapping_MAPPING_UNSPECIFIED, integrationv1.Mapping_MAPPING_JSM:
		return mapJSM(e.Type(), contract, data)
	case integrationv1.Mapping_MAPPING_SERVICENOW:
		return mapServiceNow(e.Type(), contract, data)
	case integrationv1.Mapping_MAPPING_JIRA:
		return mapJira(e.Type(), contract, data)
	}
	return Action{}, Reject("unknown-mapping", "mapping %v is not known", m)
}

// contractOf returns the contract id the event's subject names, in
// lowercase (the canonical form the platform stores).
func contractOf(e event.Event) (string, error) {
	s := strings.TrimSpace(e.Subject())
	if s == "" {
		return "", Reject("missing-contract", "the event has no subject; it must be the contract id")
	}
	if !isUUID(s) {
		return "", Reject("missing-contract", "the event's subject %q is not a contract id (a UUID)", clip(s, 64))
	}
	return strings.ToLower(s), nil
}

// checkContract rejects data that names another contract than the subject.
// An empty id is fine: the subject says which contract.
func checkContract(contract, named string) error {
	named = strings.TrimSpace(named)
	if named != "" && !strings.EqualFold(named, contract) {
		return Reject("contract-mismatch", "data names contract %q but the event's subject is contract %q", clip(named, 64), contract)
	}
	return nil
}

// jsonData returns the event's data, which must be JSON: every mapping
// reads JSON, and guessing at other encodings would only hide a
// misconfigured sender.
func jsonData(e event.Event) ([]byte, error) {
	if ct := e.DataContentType(); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		// application/json, or a JSON-based type (RFC 6839 "+json" suffix).
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return nil, Reject("unsupported-content-type", "datacontenttype %q is not JSON", clip(ct, 100))
		}
	}
	data := bytes.TrimSpace(e.Data())
	if len(data) == 0 {
		return nil, Reject("malformed-data", "the event has no data")
	}
	return data, nil
}

// object decodes data as one JSON object, keeping numbers as written.
func object(data []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, Reject("malformed-data", "data is not a JSON object: %v", err)
	}
	if m == nil { // the literal null
		return nil, Reject("malformed-data", "data is not a JSON object")
	}
	if d.More() {
		return nil, Reject("malformed-data", "data holds more than one JSON value")
	}
	return m, nil
}

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if i == 8 || i == 13 || i == 18 || i == 23 {
			if c != '-' {
				return false
			}
			continue
		}
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// clip shortens s to at most n bytes, on a rune boundary. Text from a
// ticketing tool has its own limits, which need not be the platform's; a
// long description should not make a whole ticket unmappable.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Limits of the request fields the mappings fill from ticket text.
const (
	maxTitle   = 300
	maxText    = 20000
	maxSummary = 4000
)

// timestamp parses s in the first of layouts that fits; a time without a
// zone is UTC. The empty string is nil.
func timestamp(field, s string, layouts ...string) (*timestamppb.Timestamp, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	for _, l := range layouts {
		if t, err := time.Parse(l, s); err == nil {
			ts := timestamppb.New(t)
			if ts.CheckValid() != nil {
				break
			}
			return ts, nil
		}
	}
	return nil, Reject("invalid-field", "%s: %q is not a time", field, clip(s, 64))
}

// severityName maps the words tools use for severities and priorities.
func severityName(s string) commonv1.Severity {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "critical", "highest", "blocker", "very high", "p1":
		return commonv1.Severity_SEVERITY_CRITICAL
	case "high", "major", "p2":
		return commonv1.Severity_SEVERITY_HIGH
	case "medium", "moderate", "p3":
		return commonv1.Severity_SEVERITY_MEDIUM
	case "low", "lowest", "minor", "trivial", "planning", "none", "p4", "p5":
		return commonv1.Severity_SEVERITY_LOW
	}
	return commonv1.Severity_SEVERITY_UNSPECIFIED
}

// str returns a JSON scalar as text ("" for null, objects and arrays).
func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return v.String()
	case bool:
		if v {
			return "true"
		}
		return "false"
	}
	return ""
}

// at follows keys through nested JSON objects.
func at(v any, keys ...string) any {
	for _, k := range keys {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}
