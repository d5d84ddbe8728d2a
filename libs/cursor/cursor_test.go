package cursor_test

import (
	"errors"
	"testing"
	"time"

	"github.com/jsmplatform/jsm/libs/cursor"
)

func TestRoundTrip(t *testing.T) {
	at := time.Date(2026, 3, 2, 10, 0, 0, 123456789, time.UTC)
	got, id, err := cursor.Decode(cursor.Encode(at, "0192-abc/def"))
	if err != nil || got == nil || !got.Equal(at) || id != "0192-abc/def" {
		t.Fatalf("decoded %v %q %v", got, id, err)
	}
	if got, id, err := cursor.Decode(""); got != nil || id != "" || err != nil {
		t.Fatalf("empty token: %v %q %v", got, id, err)
	}
}

func TestDecodeRejectsForeignTokens(t *testing.T) {
	for _, tok := range []string{"!!", "bm9zbGFzaA", "eC95", "MTIzLw"} { // not base64, "noslash", "x/y", "123/"
		if _, _, err := cursor.Decode(tok); !errors.Is(err, cursor.ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", tok, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(cursor.Encode(time.Unix(0, 42), "id"))
	f.Add("!!")
	f.Fuzz(func(t *testing.T, tok string) {
		at, id, err := cursor.Decode(tok)
		if err != nil || at == nil {
			return
		}
		if again, id2, err := cursor.Decode(cursor.Encode(*at, id)); err != nil || !again.Equal(*at) || id2 != id {
			t.Fatalf("%q: re-encoded token decodes to %v %q %v", tok, again, id2, err)
		}
	})
}
