package integration

import (
	"cmp"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nkeys"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

// FromEnv completes d from the environment, for the service run alone:
//
//   - JSM_INTEGRATION_MASTER_KEY (required): base64 of 32 bytes; every
//     source's and subscription's secret derives from it.
//   - JSM_INTEGRATION_SIGNING_KEY (required): the Ed25519 key ingest signs
//     its tokens with, in PKCS#8 PEM or the path of a file holding it, as
//     issuer jsm-integration for audience jsm-ingest; the incidents,
//     patching and change advisory services, and no other, accept its
//     public half (--integration-public-key) for a source's calls only.
//     It must not be a key any service trusts for users' tokens.
//   - JSM_INTEGRATION_NATS_CALLOUT_SEED: the account nkey seed that
//     signs the NATS auth callout's answers (sources on NATS); with
//     JSM_INTEGRATION_NATS_SYSTEM_PASSWORD, the password of the system
//     user that disconnects a disabled source.
//   - JSM_INTEGRATION_INCIDENTS_URL, JSM_INTEGRATION_PATCHING_URL,
//     JSM_INTEGRATION_CHANGEADVISORY_URL: where those APIs are (default
//     their services' default addresses on this host).
func FromEnv(d Deps) (Deps, error) {
	master := os.Getenv("JSM_INTEGRATION_MASTER_KEY")
	if master == "" {
		return d, errors.New("JSM_INTEGRATION_MASTER_KEY is required")
	}
	keys, err := secret.Parse(master)
	if err != nil {
		return d, fmt.Errorf("JSM_INTEGRATION_MASTER_KEY: %w", err)
	}
	d.Keys = keys
	signing := os.Getenv("JSM_INTEGRATION_SIGNING_KEY")
	if signing == "" {
		return d, errors.New("JSM_INTEGRATION_SIGNING_KEY is required")
	}
	var key ed25519.PrivateKey
	if strings.HasPrefix(strings.TrimSpace(signing), "-----BEGIN") {
		key, err = auth.ParseKey([]byte(signing))
	} else {
		key, err = auth.ReadKey(signing)
	}
	if err != nil {
		return d, fmt.Errorf("JSM_INTEGRATION_SIGNING_KEY: %w", err)
	}
	p := ingest.Platform{
		Incidents: url("JSM_INTEGRATION_INCIDENTS_URL", "http://127.0.0.1:8082"),
		Patching:  url("JSM_INTEGRATION_PATCHING_URL", "http://127.0.0.1:8083"),
		Changes:   url("JSM_INTEGRATION_CHANGEADVISORY_URL", "http://127.0.0.1:8084"),
		Token:     ingest.Minter(key),
	}
	d.Platform = func() ingest.Platform { return p }
	if d.NATSAuth, err = natsAuthFromEnv(d); err != nil {
		return d, err
	}
	return d, nil
}

func url(env, def string) string { return strings.TrimRight(cmp.Or(os.Getenv(env), def), "/") }

// natsAuthFromEnv is the NATS identity of sources, when the callout seed
// is set: the system user connects to the servers d's store is on, for
// the life of the process.
func natsAuthFromEnv(d Deps) (*ingest.NATSAuth, error) {
	seed := os.Getenv("JSM_INTEGRATION_NATS_CALLOUT_SEED")
	if seed == "" {
		return nil, nil
	}
	issuer, err := nkeys.FromSeed([]byte(strings.TrimSpace(seed)))
	if err != nil {
		return nil, fmt.Errorf("JSM_INTEGRATION_NATS_CALLOUT_SEED: %w", err)
	}
	a := &ingest.NATSAuth{Issuer: issuer}
	if pw := os.Getenv("JSM_INTEGRATION_NATS_SYSTEM_PASSWORD"); pw != "" && d.Store != nil {
		if a.System, err = natsx.As(d.Store.Conn(), "jsm-integration-system", natsauth.SystemUser, pw); err != nil {
			return nil, fmt.Errorf("JSM_INTEGRATION_NATS_SYSTEM_PASSWORD: %w", err)
		}
	}
	return a, nil
}
