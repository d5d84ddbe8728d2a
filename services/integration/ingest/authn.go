package ingest

import (
	"crypto/hmac"
	"errors"
	"net/http"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/jsmplatform/jsm/services/integration/ingest/domain"
	"github.com/jsmplatform/jsm/services/integration/secret"
)

var errUnauthenticated = errors.New("unknown source or bad credentials")

// authenticate checks a request of src: a bearer token that is the
// source's secret, or a Standard Webhooks signature of body made with it
// (webhook-id, webhook-timestamp within 5 minutes, webhook-signature).
// The previous secret is accepted for the grace period after a rotation.
func (s *Sources) authenticate(src domain.State, h http.Header, body []byte, now time.Time) error {
	versions := []uint32{src.SecretVersion}
	if src.SecretVersion > 1 && now.Sub(src.RotatedAt) < s.d.Limits.RotationGrace {
		versions = append(versions, src.SecretVersion-1)
	}
	if token, ok := strings.CutPrefix(h.Get("Authorization"), "Bearer "); ok {
		for _, v := range versions {
			if hmac.Equal([]byte(strings.TrimSpace(token)), []byte(s.d.Keys.Derive(secret.ForSource, string(src.ID), v))) {
				return nil
			}
		}
		return errUnauthenticated
	}
	if h.Get("webhook-signature") == "" {
		return errUnauthenticated
	}
	for _, v := range versions {
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
