package app

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/jsmplatform/jsm/libs/pgdb"
	contractsv1 "github.com/jsmplatform/jsm/proto/gen/jsm/contracts/v1"
	"github.com/jsmplatform/jsm/services/contracts/domain"
	readmodel "github.com/jsmplatform/jsm/services/contracts/projection"
)

// Get returns a contract the org is a party to; any other contract is not
// found, whether or not it exists.
func (q *Queries) Get(ctx context.Context, org domain.OrgID, id domain.ContractID, minPosition uint64) (*contractsv1.Contract, error) {
	if err := q.wait(ctx, minPosition); err != nil {
		return nil, err
	}
	found, err := q.views(ctx, org, `
		SELECT view FROM contracts.contracts
		WHERE contract_id = $1 AND (customer_org_id = $2 OR provider_org_id = $2)`, string(id), string(org))
	if err != nil {
		return nil, fmt.Errorf("get contract %s: %w", id, err)
	}
	if len(found) == 0 {
		return nil, domain.NotFoundError{ID: id}
	}
	return found[0], nil
}

// views runs a query of stored contract views on behalf of org. The query
// names the org itself (which the indexes need); row-level security backs
// it up.
func (q *Queries) views(ctx context.Context, org domain.OrgID, sql string, args ...any) ([]*contractsv1.Contract, error) {
	var out []*contractsv1.Contract
	err := pgdb.ReadAs(ctx, q.pool, readmodel.Schema, string(org), sql, args, func(rows pgx.Rows) error {
		for rows.Next() {
			var view []byte
			if err := rows.Scan(&view); err != nil {
				return err
			}
			c := &contractsv1.Contract{}
			if err := proto.Unmarshal(view, c); err != nil {
				return fmt.Errorf("stored contract: %w", err)
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	return out, err
}

// ListFilter narrows a list; zero values mean any.
type ListFilter struct {
	Status       contractsv1.ContractStatus
	Phase        contractsv1.Phase
	Counterparty domain.OrgID
	PageSize     int
	PageToken    string
	MinPosition  uint64
}

// ErrBadPageToken rejects a page token this service did not hand out.
var ErrBadPageToken = domain.ValidationError{Field: "page_token", Reason: "not a token from an earlier page"}

// DefaultPageSize applies when a list asks for no size.
const DefaultPageSize = 50

// List returns the org's contracts in id order (ids are time-ordered, so
// oldest first), a page at a time.
func (q *Queries) List(ctx context.Context, org domain.OrgID, f ListFilter) ([]*contractsv1.Contract, string, error) {
	if err := q.wait(ctx, f.MinPosition); err != nil {
		return nil, "", err
	}
	after := ""
	if f.PageToken != "" {
		b, err := base64.RawURLEncoding.DecodeString(f.PageToken)
		if err != nil || len(b) == 0 {
			return nil, "", ErrBadPageToken
		}
		after = string(b)
	}
	size := f.PageSize
	if size <= 0 {
		size = DefaultPageSize
	}
	out, err := q.views(ctx, org, `
		SELECT view FROM contracts.contracts
		WHERE (customer_org_id = $1 OR provider_org_id = $1)
		  AND ($2 = 0 OR status = $2)
		  AND ($3 = 0 OR phase = $3)
		  AND ($4 = '' OR customer_org_id = $4 OR provider_org_id = $4)
		  AND contract_id > $5
		ORDER BY contract_id
		LIMIT $6`, string(org), int16(f.Status), int16(f.Phase), string(f.Counterparty), after, size+1)
	if err != nil {
		return nil, "", fmt.Errorf("list contracts: %w", err)
	}
	next := ""
	if len(out) > size {
		out = out[:size]
		next = base64.RawURLEncoding.EncodeToString([]byte(out[size-1].GetContractId()))
	}
	return out, next, nil
}
