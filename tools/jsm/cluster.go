package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"text/tabwriter"

	"github.com/jsmplatform/jsm/tools/cluster"
)

const defaultClusterDir = ".jsm-cluster"

// runClusterCommand runs the production topology on this machine:
// `jsm cluster up|down|status`.
func runClusterCommand(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("cluster: want up, down or status")
	}
	fs := newFlagSet("cluster "+args[0], stderr)
	dataDir := fs.String("data-dir", defaultClusterDir, "folder of the cluster's data, logs and state file")
	root := fs.String("root", ".", "repository root (services/*/cmd/* are built from it)")
	binDir := fs.String("bin-dir", "", "where the binaries go (default <root>/bin)")
	purge := fs.Bool("purge", false, "down: delete the data folder too")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	log, err := newLogger(stderr, "text", *logLevel)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	switch args[0] {
	case "up":
		c, err := cluster.Start(ctx, cluster.Config{Root: *root, DataDir: *dataDir, BinDir: *binDir, FixedPorts: true, Logger: log})
		if err != nil {
			return err
		}
		printCluster(stdout, c)
		rel := c.DataDir
		if wd, err := os.Getwd(); err == nil {
			if r, err := filepath.Rel(wd, c.DataDir); err == nil {
				rel = r
			}
		}
		fmt.Fprintf(stdout, "\nTokens: jsm token --data-dir %s --org acme --user alice --role org-admin\nStop:   make cluster-down (jsm cluster down --data-dir %[1]s)\n", rel)
		return nil
	case "down":
		c, err := cluster.Load(*dataDir)
		if err != nil {
			return err
		}
		return c.Stop(ctx, *purge)
	case "status":
		c, err := cluster.Load(*dataDir)
		if err != nil {
			return err
		}
		printCluster(stdout, c)
		if !c.Running() {
			return errors.New("cluster: not running")
		}
		return nil
	default:
		return fmt.Errorf("cluster: unknown subcommand %q: want up, down or status", args[0])
	}
}

func printCluster(w io.Writer, c *cluster.Cluster) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROCESS\tPID\tSTATE\tURL\tLOG")
	for _, p := range append(append([]*cluster.Proc{}, c.NATS...), c.Services...) {
		state := "stopped"
		switch {
		case p.Alive() && p.Healthy():
			state = "ready"
		case p.Alive():
			state = "not ready"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", p.Name, p.PID, state, p.URL, p.Log)
	}
	fmt.Fprintf(tw, "postgres\t\t\t%s\t%s\n", c.DSN, filepath.Join(c.PostgresAt, "postgres.log"))
	_ = tw.Flush()
	fmt.Fprintf(w, "\nJSM_NATS_URL=%s\n", c.NATSURLs)
	fmt.Fprintf(w, "NATS users and passwords (jsm-admin for tools): %s\n", filepath.Join(c.DataDir, "nats-auth.json"))
}
