package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/jsmplatform/jsm/services/integration/webhooks/domain"
)

// errPrivateTarget: the endpoint is on a loopback, private or otherwise
// internal address, which a webhook must not reach unless the deployment
// allows it (AllowPrivateTargets): else an org could make the platform
// call into its own network.
var errPrivateTarget = errors.New("address is not public")

// checkURL validates a subscription's endpoint: an absolute http or https
// URL without credentials whose host, if it is an address, is public
// unless allowPrivate. A name is checked again when the worker dials it
// (see publicDialer), since what it resolves to may change.
func checkURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return domain.ValidationError{Field: "url", Reason: err.Error()}
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return domain.ValidationError{Field: "url", Reason: "scheme must be http or https"}
	}
	if u.Host == "" || u.Hostname() == "" {
		return domain.ValidationError{Field: "url", Reason: "host missing"}
	}
	if u.User != nil {
		return domain.ValidationError{Field: "url", Reason: "credentials in the URL are not allowed"}
	}
	if allowPrivate {
		return nil
	}
	host := u.Hostname()
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return domain.ValidationError{Field: "url", Reason: errPrivateTarget.Error()}
	}
	if addr, err := netip.ParseAddr(host); err == nil && !public(addr) {
		return domain.ValidationError{Field: "url", Reason: errPrivateTarget.Error()}
	}
	return nil
}

func public(a netip.Addr) bool {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() ||
		a.IsUnspecified() || a.IsMulticast() || a.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// notPublic are the special-purpose ranges of the IANA IPv4 and IPv6
// Special-Purpose Address Registries that are not globally reachable, or
// that translate to an IPv4 address a webhook could not name directly
// (NAT64, 6to4, Teredo, IPv4-compatible and -translated forms), beside what
// the netip predicates above cover.
var notPublic = func() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range []string{
		"0.0.0.0/8",          // "this network"
		"100.64.0.0/10",      // shared address space (carrier-grade NAT)
		"192.0.0.0/24",       // IETF protocol assignments
		"192.0.2.0/24",       // documentation (TEST-NET-1)
		"192.88.99.0/24",     // 6to4 relay anycast
		"198.18.0.0/15",      // benchmarking
		"198.51.100.0/24",    // documentation (TEST-NET-2)
		"203.0.113.0/24",     // documentation (TEST-NET-3)
		"240.0.0.0/4",        // reserved
		"255.255.255.255/32", // limited broadcast
		"::/96",              // IPv4-compatible (deprecated)
		"::ffff:0:0:0/96",    // IPv4-translated (SIIT)
		"64:ff9b::/96",       // NAT64 well-known prefix
		"64:ff9b:1::/48",     // NAT64 local use
		"100::/64",           // discard-only
		"2001::/23",          // IETF protocol assignments (Teredo, benchmarking, ORCHID)
		"2001:db8::/32",      // documentation
		"2002::/16",          // 6to4
		"3fff::/20",          // documentation
		"5f00::/16",          // segment routing (SRv6) SIDs
		"fec0::/10",          // site-local (deprecated)
	} {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}()

// newHTTPClient is the worker's default client: no redirects (a 3xx is a
// failed attempt, and a redirect could lead inside), and unless
// allowPrivate a dialer that refuses non-public addresses after
// resolution.
func newHTTPClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second}
	if !allowPrivate {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return err
			}
			if !public(ap.Addr()) {
				return fmt.Errorf("%s: %w", address, errPrivateTarget)
			}
			return nil
		}
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
