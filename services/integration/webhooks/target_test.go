package webhooks

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"
)

func TestCheckURL(t *testing.T) {
	for url, ok := range map[string]bool{
		"https://hooks.example.com/jsm":       true,
		"http://hooks.example.com:8080/x?y=1": true,
		"https://93.184.215.14/jsm":           true,
		"ftp://hooks.example.com/jsm":         false,
		"https:///jsm":                        false,
		"https://user:pw@hooks.example.com/":  false,
		"http://localhost:8080/jsm":           false,
		"http://api.localhost/jsm":            false,
		"http://127.0.0.1/jsm":                false,
		"http://[::1]/jsm":                    false,
		"http://10.1.2.3/jsm":                 false,
		"http://192.168.0.10/jsm":             false,
		"http://169.254.169.254/latest":       false,
		"http://[fd00::1]/jsm":                false,
		"http://[::ffff:127.0.0.1]/jsm":       false,
		"http://0.0.0.0/jsm":                  false,
		"http://100.64.0.1/jsm":               false,
		"http://[2606:4700::6810:84e5]/jsm":   true,
		"http://[64:ff9b::7f00:1]/jsm":        false, // NAT64 of 127.0.0.1
		"http://[64:ff9b:1::a00:1]/jsm":       false,
		"http://[2002:7f00:1::1]/jsm":         false, // 6to4 of 127.0.0.1
		"http://[2001:0:4136:e378::1]/jsm":    false, // Teredo
		"http://[2001:db8::1]/jsm":            false,
		"http://[3fff::1]/jsm":                false,
		"http://[100::1]/jsm":                 false,
		"http://[fec0::1]/jsm":                false,
		"http://[::7f00:1]/jsm":               false, // IPv4-compatible 127.0.0.1
		"http://[::ffff:0:a00:1]/jsm":         false, // IPv4-translated 10.0.0.1
		"http://[ff02::1]/jsm":                false,
		"http://198.18.0.1/jsm":               false,
		"http://198.19.255.254/jsm":           false,
		"http://198.20.0.1/jsm":               true,
		"http://240.0.0.1/jsm":                false,
		"http://255.255.255.255/jsm":          false,
		"http://0.1.2.3/jsm":                  false,
		"http://192.0.0.8/jsm":                false,
		"http://192.0.2.1/jsm":                false,
		"http://192.88.99.1/jsm":              false,
		"http://198.51.100.7/jsm":             false,
		"http://203.0.113.9/jsm":              false,
		"http://224.0.0.1/jsm":                false,
		"http://172.16.0.1/jsm":               false,
		"http://172.32.0.1/jsm":               true,
	} {
		err := checkURL(url, false)
		if ok != (err == nil) {
			t.Errorf("%s: %v, want ok %t", url, err, ok)
		}
		if err != nil && !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v is not an invalid argument", url, err)
		}
	}
	if err := checkURL("http://127.0.0.1:8080/jsm", true); err != nil {
		t.Errorf("private target allowed: %v", err)
	}
	if err := checkURL("ftp://127.0.0.1/jsm", true); err == nil {
		t.Error("ftp accepted with private targets allowed")
	}
}

// The default client refuses to connect to a private address whatever name
// led there, and follows no redirects.
func TestClientDialsPublicAddressesOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://example.com/", http.StatusFound)
	}))
	defer srv.Close()
	_, err := newHTTPClient(false).Get(srv.URL)
	if !errors.Is(err, errPrivateTarget) {
		t.Fatalf("dialing %s: %v, want %v", srv.URL, err, errPrivateTarget)
	}
	resp, err := newHTTPClient(true).Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d: the redirect was followed", resp.StatusCode)
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/jsm", "http://[::1]:80/", "http://%zz", "//x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if err := checkURL(raw, false); err != nil && !errors.Is(err, domain.ErrInvalid) {
			t.Fatalf("%q: %v is not an invalid argument", raw, err)
		}
	})
}

func TestBackoff(t *testing.T) {
	w := &worker{cfg: Delivery{RetryBase: 5e9, RetryMax: 60e9}.withDefaults(), jitter: func(d time.Duration) time.Duration { return d }}
	var got []time.Duration
	for n := 1; n <= 6; n++ {
		got = append(got, w.backoff(n))
	}
	want := []time.Duration{5e9, 10e9, 20e9, 40e9, 60e9, 60e9}
	if !slices.Equal(got, want) {
		t.Fatalf("backoff %v, want %v", got, want)
	}
	for range 100 {
		if d := equalJitter(time.Minute); d < 30*time.Second || d >= time.Minute {
			t.Fatalf("jitter of a minute gave %s", d)
		}
	}
}

// A failed attempt is described by its status code or the class of its
// failure only: no body, reason phrase, address or port of the endpoint.
func TestAttemptReasonsLeakNothing(t *testing.T) {
	if got := statusReason(http.StatusServiceUnavailable); got != "503 Service Unavailable" {
		t.Errorf("503: %q", got)
	}
	if got := statusReason(599); got != "599" {
		t.Errorf("599: %q", got)
	}

	refused := httptest.NewServer(http.NotFoundHandler())
	addr := refused.Listener.Addr().String()
	refused.Close()
	_, err := newHTTPClient(true).Get("http://" + addr + "/x")
	if got := transportReason(err); got != "connection refused" {
		t.Errorf("refused (%v): %q", err, got)
	}
	_, err = newHTTPClient(false).Get("http://" + addr + "/x")
	if got := transportReason(err); got != "address is not public" {
		t.Errorf("private (%v): %q", err, got)
	}
	_, err = newHTTPClient(true).Get("http://no-such-host.invalid/x")
	if got := transportReason(err); got != "name not resolved" {
		t.Errorf("unresolved (%v): %q", err, got)
	}
	for _, reason := range []string{transportReason(err), transportReason(errors.New("dial tcp 10.0.0.7:5432: i/o"))} {
		if strings.ContainsAny(reason, ":0123456789") {
			t.Errorf("reason %q names an address or port", reason)
		}
	}
}
