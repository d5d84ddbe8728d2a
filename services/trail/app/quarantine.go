package app

import (
	"context"

	"github.com/jsmplatform/jsm/services/trail/projection"
)

// MaxQuarantinePage bounds a page of ListQuarantine.
const MaxQuarantinePage = 500

// Quarantine lists the events the trail refused to log after position
// after, oldest first. They may be any org's: the caller is the platform
// operator, and the query runs as the service's own role.
func (a *App) Quarantine(ctx context.Context, after uint64, limit int) ([]projection.Quarantined, error) {
	if limit <= 0 || limit > MaxQuarantinePage {
		limit = MaxQuarantinePage
	}
	return projection.ListQuarantine(ctx, a.Pool, after, limit)
}
