package main

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jsmplatform/jsm/libs/auth"
)

// defaultDataDir is where `jsm up` keeps its data and `jsm token` finds the dev key.
const defaultDataDir = ".jsm"

type tokenConfig struct {
	DataDir string
	Org     string
	User    string
	Roles   []string
	TTL     time.Duration
}

func runTokenCommand(args []string, stdout, stderr io.Writer) error {
	cfg := tokenConfig{}
	fs := newFlagSet("token", stderr)
	fs.StringVar(&cfg.DataDir, "data-dir", defaultDataDir, "data folder of `jsm up` (holds the dev signing key; created if missing)")
	fs.StringVar(&cfg.Org, "org", "", "organisation of the caller (required)")
	fs.StringVar(&cfg.User, "user", "", "user id of the caller (required)")
	fs.Var((*listFlag)(&cfg.Roles), "role", "role of the caller, e.g. org-admin (repeatable, or comma-separated)")
	fs.DurationVar(&cfg.TTL, "ttl", 12*time.Hour, "how long the token is valid")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected arguments %q", fs.Args())
	}
	tok, err := mintToken(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "dev token for user %q of org %q, roles %s, valid %s:\n",
		cfg.User, cfg.Org, strings.Join(cfg.Roles, ","), cfg.TTL)
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// mintToken signs a dev token with the key in cfg.DataDir, creating the key
// when missing (so `jsm token` may run before the first `jsm up`).
func mintToken(cfg tokenConfig) (string, error) {
	switch {
	case cfg.Org == "":
		return "", errors.New("token: --org is required")
	case cfg.User == "":
		return "", errors.New("token: --user is required")
	case len(cfg.Roles) == 0:
		return "", errors.New("token: at least one --role is required")
	}
	key, err := auth.LoadOrCreateDevKey(cfg.DataDir)
	if err != nil {
		return "", err
	}
	return auth.Mint(key, auth.DevIssuer, auth.DevAudience,
		auth.Principal{Org: cfg.Org, User: cfg.User, Roles: cfg.Roles}, cfg.TTL)
}

// listFlag collects a repeatable, comma-separable string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for r := range strings.SplitSeq(v, ",") {
		if r = strings.TrimSpace(r); r != "" {
			*l = append(*l, r)
		}
	}
	return nil
}
