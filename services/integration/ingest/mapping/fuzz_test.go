package mapping

import (
	"path/filepath"
	"reflect"
	"testing"

	integrationv1 "github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1"
)

// fuzzMap fuzzes one mapping's decoder with event types and data, seeded
// from the recorded samples in testdata/dir. Whatever the input, Map must
// not panic, every error must be a rejection, and an Action must name its
// object and contract and ask for something.
func fuzzMap(f *testing.F, m integrationv1.Mapping, dir string, types ...string) {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no samples in testdata/%s: %v", dir, err)
	}
	for _, name := range files {
		e := load(f, filepath.Join(dir, filepath.Base(name)))
		f.Add(e.Type(), e.Data())
	}
	for _, typ := range types {
		f.Add(typ, []byte(`{}`))
	}
	f.Fuzz(func(t *testing.T, typ string, data []byte) {
		a, err := Map(m, newEvent(typ, contract, "application/json", string(data)))
		if err != nil {
			if r, ok := IsReject(err); !ok || r.Type == "" {
				t.Fatalf("error %v is no rejection", err)
			}
			return
		}
		if a.Object == "" || a.ContractID != contract {
			t.Fatalf("Action without object or contract: %+v", a)
		}
		if !asksSomething(a) {
			t.Fatalf("Action asks for nothing: %+v", a)
		}
	})
}

// asksSomething reports whether any request of a is set.
func asksSomething(a Action) bool {
	v := reflect.ValueOf(a)
	for i := 0; i < v.NumField(); i++ {
		if f := v.Field(i); f.Kind() == reflect.Pointer && !f.IsNil() {
			return true
		}
	}
	return false
}

func FuzzMapJSM(f *testing.F) {
	fuzzMap(f, integrationv1.Mapping_MAPPING_JSM, "jsm")
}

func FuzzMapServiceNow(f *testing.F) {
	fuzzMap(f, integrationv1.Mapping_MAPPING_SERVICENOW, "servicenow", "com.servicenow.record.inserted")
}

func FuzzMapJira(f *testing.F) {
	fuzzMap(f, integrationv1.Mapping_MAPPING_JIRA, "jira", TypeJiraWebhook)
}
