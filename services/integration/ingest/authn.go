package ingest

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

// A request of a source authenticates with a bearer token that is the
// source's secret, or a Standard Webhooks signature of its body made with it
// (webhook-id, webhook-timestamp within 5 minutes, webhook-signature). The
// previous secret is accepted for the grace period after a rotation.
// errUnauthenticated is the one answer to every failure, so a caller cannot
// tell an unknown source from a wrong secret.
var errUnauthenticated = errors.New("unknown source or bad credentials")

// secretVersions are the versions of src's secret a request may use: the
// current one, and the previous one within the grace period after a
// rotation (unless it was revoked).
func (s *Sources) secretVersions(src domain.State, now time.Time) []uint32 {
	versions := []uint32{src.SecretVersion}
	if src.SecretVersion > 1 && now.Before(src.PreviousUntil(s.d.Limits.RotationGrace)) {
		versions = append(versions, src.SecretVersion-1)
	}
	return versions
}

// authenticateHeaders decides what the headers alone can: a bearer token
// is checked here, a request with neither a token nor a signature is
// refused, and a signed one whose timestamp is out of the 5 minutes is
// refused; needBody reports that a signature remains to be checked.
func (s *Sources) authenticateHeaders(src domain.State, h http.Header, now time.Time) (needBody bool, err error) {
	if token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok {
		for _, v := range s.secretVersions(src, now) {
			if hmac.Equal([]byte(strings.TrimSpace(token)), []byte(s.d.Keys.Derive(secret.ForSource, string(src.ID), v))) {
				return false, nil
			}
		}
		return false, errUnauthenticated
	}
	if h.Get("webhook-signature") == "" || h.Get("webhook-id") == "" {
		return false, errUnauthenticated
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || now.Sub(time.Unix(ts, 0)).Abs() > signatureTolerance {
		return false, errUnauthenticated
	}
	return true, nil
}

// signatureTolerance is how far a signature's timestamp may be from now
// (the Standard Webhooks library's own tolerance).
const signatureTolerance = 5 * time.Minute

// authenticateSignature checks the Standard Webhooks signature of body.
func (s *Sources) authenticateSignature(src domain.State, h http.Header, body []byte, now time.Time) error {
	for _, v := range s.secretVersions(src, now) {
		wh, err := standardwebhooks.NewWebhookRaw(s.d.Keys.Raw(secret.ForSource, string(src.ID), v))
		if err != nil {
			return err
		}
		if wh.Verify(body, h) == nil {
			return nil
		}
	}
	return errUnauthenticated
}
