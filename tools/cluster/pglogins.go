package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/jsmplatform/jsm/libs/pgdb"
)

// ServiceSchemas are the PostgreSQL schemas each service keeps its read
// models in: its own login role owns these and nothing else.
var ServiceSchemas = map[string][]string{
	"contracts":      {"contracts"},
	"incidents":      {"incidents"},
	"patching":       {"patching"},
	"changeadvisory": {"changeadvisory"},
	"audits":         {"audits"},
	"reporting":      {"reporting"},
	"trail":          {"trail"},
	"integration":    {"ingest", "webhooks"},
}

// pgLoginsFile keeps the services' PostgreSQL passwords (0600).
const pgLoginsFile = "postgres-logins.json"

// ProvisionLogins makes each named service's login role (libs/pgdb Login,
// jsm_<service>) as the superuser of adminDSN, its password kept in
// dataDir (made once, 0600), and returns each service's DSN: adminDSN's
// server and database, logging in as the service's role.
func ProvisionLogins(ctx context.Context, adminDSN, dataDir string, services []string) (map[string]string, error) {
	passwords, err := loadPGPasswords(dataDir, services)
	if err != nil {
		return nil, err
	}
	admin, err := pgdb.Open(ctx, adminDSN)
	if err != nil {
		return nil, err
	}
	defer admin.Close()
	dsns := make(map[string]string, len(services))
	for _, name := range services {
		schemas, ok := ServiceSchemas[name]
		if !ok {
			return nil, fmt.Errorf("postgres login of %s: no schema known", name)
		}
		l := pgdb.Login{Role: pgdb.ServiceRole(name), Password: passwords[name], Schemas: schemas}
		if err := pgdb.Provision(ctx, admin, l); err != nil {
			return nil, err
		}
		if dsns[name], err = pgdb.WithLogin(adminDSN, l); err != nil {
			return nil, err
		}
	}
	return dsns, nil
}

func loadPGPasswords(dataDir string, services []string) (map[string]string, error) {
	path := filepath.Join(dataDir, pgLoginsFile)
	passwords := map[string]string{}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("postgres logins: %w", err)
	default:
		if err := json.Unmarshal(data, &passwords); err != nil {
			return nil, fmt.Errorf("postgres logins %s: %w", path, err)
		}
	}
	missing := false
	for _, name := range services {
		if passwords[name] == "" {
			passwords[name], missing = rand.Text(), true
		}
	}
	if !missing {
		return passwords, nil
	}
	if data, err = json.MarshalIndent(passwords, "", "  "); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return nil, fmt.Errorf("postgres logins: %w", err)
	}
	return passwords, nil
}
