// Command jsm runs and operates the JSM platform locally.
//
//	jsm up      start NATS JetStream, PostgreSQL and every service in one process
//	jsm token   print a dev token accepted by `jsm up`
//	jsm trail   search|replay|export|verify|witness the audit trail
//	jsm timeline --correlation ID   one interaction across areas, in order
//	jsm rebuild PROJECTION|--all    rebuild read models from the stream
//	jsm cluster up|down|status      the production topology as local processes
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) error
}

var commands = []command{
	{"up", "run the whole platform locally (NATS, PostgreSQL, every service)", runUpCommand},
	{"token", "print a dev token accepted by `jsm up` (last line of output)", runTokenCommand},
	{"trail", "search, replay, export, verify and witness the audit trail", runTrailCommand},
	{"rebuild", "rebuild a projection (or --all) from the stream while the platform serves", runRebuildCommand},
	{"quarantine", "list the events projections set aside because no retry could apply them", runQuarantineCommand},
	{"timeline", "show one interaction across areas in order (--correlation ID)", runTimelineCommand},
	{"event-key", "make a service's event signing key (--area NAME): JSM_EVENT_SIGNING_KEY, then the public key for JSM_TRAIL_SIGNER_KEYS", runEventKeyCommand},
	{"pg-logins", "make each service's PostgreSQL login role, owning its schema alone (as a superuser; JSM_PG_PASSWORD_<SERVICE>)", runPGLoginsCommand},
	{"cluster", "up|down|status: 3 NATS nodes, PostgreSQL and each service as its own process", runClusterCommand},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "jsm:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		if len(args) == 0 {
			return errors.New("no command given")
		}
		return nil
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	usage(stderr)
	return fmt.Errorf("unknown command %q", args[0])
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: jsm <command> [flags]   (jsm <command> -h for its flags)")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
}

// newFlagSet is a flag set for a subcommand that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("jsm "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}
