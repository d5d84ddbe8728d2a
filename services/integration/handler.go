// Package integration is the integration service: sources of an org's ITSM
// tools and scanners publish CloudEvents in (package ingest), and the orgs'
// webhook subscriptions receive platform events out (package webhooks).
package integration

import (
	"github.com/jsmplatform/jsm/proto/gen/jsm/integration/v1/integrationv1connect"
	"github.com/jsmplatform/jsm/services/integration/ingest"
	"github.com/jsmplatform/jsm/services/integration/webhooks"
)

// handler is jsm.integration.v1.IntegrationService: each half implements
// its own procedures.
type handler struct {
	*ingest.Sources
	*webhooks.Subscriptions
}

var _ integrationv1connect.IntegrationServiceHandler = handler{}
