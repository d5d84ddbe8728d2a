package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"

	adminv1 "github.com/jsmplatform/jsm/proto/gen/jsm/admin/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/admin/v1/adminv1connect"
)

func runRebuildCommand(args []string, stdout, stderr io.Writer) error {
	var c client
	var all bool
	var every time.Duration
	fs := newFlagSet("rebuild", stderr)
	c.flags(fs)
	fs.BoolVar(&all, "all", false, "rebuild every projection, one after the other")
	fs.DurationVar(&every, "progress-every", 200*time.Millisecond, "how often the progress bar is redrawn")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if all == (fs.NArg() == 1) || fs.NArg() > 1 {
		return errors.New("rebuild: name one PROJECTION or pass --all (the token needs the platform-operator role)")
	}
	tok, err := c.bearer()
	if err != nil {
		return err
	}
	ac := adminv1connect.NewAdminServiceClient(http.DefaultClient, strings.TrimRight(c.server, "/"), connect.WithInterceptors(tokenHeader(tok)))
	ctx := context.Background()
	list, err := ac.ListProjections(ctx, connect.NewRequest(&adminv1.ListProjectionsRequest{}))
	if err != nil {
		return err
	}
	var names []string
	for _, p := range list.Msg.GetProjections() {
		if all || p.GetName() == fs.Arg(0) {
			names = append(names, p.GetName())
		}
	}
	if len(names) == 0 {
		var known []string
		for _, p := range list.Msg.GetProjections() {
			known = append(known, p.GetName())
		}
		return fmt.Errorf("rebuild: no projection %q (there are: %s)", fs.Arg(0), strings.Join(known, ", "))
	}
	for _, name := range names {
		if err := rebuildOne(ctx, ac, name, every, stdout); err != nil {
			return err
		}
	}
	return nil
}

// rebuildOne resets a projection and draws its progress until it is back
// where the stream was at the reset.
func rebuildOne(ctx context.Context, ac adminv1connect.AdminServiceClient, name string, every time.Duration, w io.Writer) error {
	start := time.Now()
	res, err := ac.RebuildProjection(ctx, connect.NewRequest(&adminv1.RebuildProjectionRequest{Name: name}))
	if err != nil {
		return fmt.Errorf("rebuild %s: %w", name, err)
	}
	target := res.Msg.GetProjection().GetStreamPosition()
	for {
		list, err := ac.ListProjections(ctx, connect.NewRequest(&adminv1.ListProjectionsRequest{}))
		if err != nil {
			return err
		}
		var pos uint64
		for _, p := range list.Msg.GetProjections() {
			if p.GetName() == name {
				pos = p.GetPosition()
			}
		}
		fmt.Fprintf(w, "\r%s", progressBar(name, pos, target, time.Since(start)))
		if pos >= target {
			fmt.Fprintln(w)
			return nil
		}
		time.Sleep(every)
	}
}

// progressBar draws "name [#####.....]  50%  500/1000 events  1234 events/s".
func progressBar(name string, done, total uint64, took time.Duration) string {
	const width = 30
	frac := 1.0
	if total > 0 {
		frac = min(float64(done)/float64(total), 1)
	}
	n := int(frac * width)
	rate := float64(done) / max(took.Seconds(), 1e-3)
	return fmt.Sprintf("%-10s [%s%s] %3.0f%%  %d/%d events  %.0f events/s", name, strings.Repeat("#", n), strings.Repeat(".", width-n), frac*100, done, total, rate)
}

// runQuarantineCommand lists the events the projections set aside.
func runQuarantineCommand(args []string, stdout, stderr io.Writer) error {
	var c client
	fs := newFlagSet("quarantine", stderr)
	c.flags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 1 {
		return errors.New("quarantine: name at most one PROJECTION (the token needs the platform-operator role)")
	}
	tok, err := c.bearer()
	if err != nil {
		return err
	}
	ac := adminv1connect.NewAdminServiceClient(http.DefaultClient, strings.TrimRight(c.server, "/"), connect.WithInterceptors(tokenHeader(tok)))
	res, err := ac.ListQuarantined(context.Background(), connect.NewRequest(&adminv1.ListQuarantinedRequest{Projection: fs.Arg(0)}))
	if err != nil {
		return err
	}
	if len(res.Msg.GetEvents()) == 0 {
		fmt.Fprintln(stdout, "no event in quarantine")
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROJECTION\tPOSITION\tEVENT\tTYPE\tSINCE\tREASON")
	for _, q := range res.Msg.GetEvents() {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", q.GetProjection(), q.GetPosition(), orDash(q.GetEventId()), orDash(q.GetType()),
			q.GetQuarantinedAt().AsTime().UTC().Format(time.RFC3339), strconv.Quote(q.GetReason()))
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
