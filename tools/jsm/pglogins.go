package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/jsmplatform/jsm/libs/pgdb"
	"github.com/jsmplatform/jsm/tools/cluster"
)

// runPGLoginsCommand makes each service's PostgreSQL login role (libs/pgdb
// Login) as an administrator: what a deployment runs once, and again after
// an upgrade, before the services start with DSNs of their own roles.
// Passwords come from the environment, never from flags (which ps shows).
func runPGLoginsCommand(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("pg-logins", stderr)
	adminDSN := fs.String("admin-dsn", os.Getenv("JSM_PG_ADMIN_DSN"), "PostgreSQL DSN of a superuser (env JSM_PG_ADMIN_DSN); each service's password is JSM_PG_PASSWORD_<SERVICE>")
	only := fs.String("services", "", "comma-separated services (default: all)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *adminDSN == "" {
		return fmt.Errorf("--admin-dsn (JSM_PG_ADMIN_DSN) is required")
	}
	services := slices.Sorted(maps.Keys(cluster.ServiceSchemas))
	if *only != "" {
		services = strings.Split(*only, ",")
	}
	var logins []pgdb.Login
	for _, name := range services {
		schemas, ok := cluster.ServiceSchemas[name]
		if !ok {
			return fmt.Errorf("unknown service %q", name)
		}
		env := "JSM_PG_PASSWORD_" + strings.ToUpper(name)
		password := os.Getenv(env)
		if password == "" {
			return fmt.Errorf("%s (the password of %s) is not set", env, pgdb.ServiceRole(name))
		}
		logins = append(logins, pgdb.Login{Role: pgdb.ServiceRole(name), Password: password, Schemas: schemas})
	}
	ctx := context.Background()
	admin, err := pgdb.Open(ctx, *adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close()
	for _, l := range logins {
		if err := pgdb.Provision(ctx, admin, l); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%s owns %s\n", l.Role, strings.Join(l.Schemas, ", "))
	}
	return nil
}
