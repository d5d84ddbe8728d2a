package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"connectrpc.com/connect"
	"golang.org/x/mod/sumdb/tlog"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/jsmplatform/jsm/libs/eventsig"
	trailv1 "github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1"
	"github.com/jsmplatform/jsm/proto/gen/jsm/trail/v1/trailv1connect"
	"github.com/jsmplatform/jsm/services/trail/ledger"
)

// The analyst commands talk to a running platform (`jsm up` or a
// deployment) through the trail's Connect API, like any client would.

func runTrailCommand(args []string, stdout, stderr io.Writer) error {
	subs := map[string]func([]string, io.Writer, io.Writer) error{
		"search":     runTrailSearch,
		"replay":     runTrailReplay,
		"export":     runTrailExport,
		"verify":     runTrailVerify,
		"witness":    runTrailWitness,
		"quarantine": runTrailQuarantine,
	}
	if len(args) == 0 || subs[args[0]] == nil {
		fmt.Fprintln(stderr, "Usage: jsm trail search|replay|export|verify|witness|quarantine [flags]   (jsm trail <command> -h for its flags)")
		if len(args) == 0 {
			return errors.New("trail: no command given")
		}
		return fmt.Errorf("trail: unknown command %q", args[0])
	}
	return subs[args[0]](args[1:], stdout, stderr)
}

// client are the flags every command against a server has.
type client struct {
	server, token string
}

func (c *client) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.server, "server", "http://127.0.0.1:8080", "base URL of the platform's APIs")
	fs.StringVar(&c.token, "token", "", "bearer token (default $JSM_TOKEN; see `jsm token`)")
}

// bearer is the token of --token, else of $JSM_TOKEN.
func (c *client) bearer() (string, error) {
	tok := c.token
	if tok == "" {
		tok = os.Getenv("JSM_TOKEN")
	}
	if tok == "" {
		return "", errors.New("no token: pass --token or set JSM_TOKEN (see `jsm token`)")
	}
	return tok, nil
}

func (c *client) trail() (trailv1connect.TrailServiceClient, error) {
	tok, err := c.bearer()
	if err != nil {
		return nil, err
	}
	return trailv1connect.NewTrailServiceClient(http.DefaultClient, strings.TrimRight(c.server, "/"), connect.WithInterceptors(tokenHeader(tok))), nil
}

// tokenHeader sends the bearer token on unary and streaming calls.
type tokenHeader string

func (t tokenHeader) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		req.Header().Set("Authorization", "Bearer "+string(t))
		return next(ctx, req)
	}
}

func (t tokenHeader) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return func(ctx context.Context, spec connect.Spec) connect.StreamingClientConn {
		conn := next(ctx, spec)
		conn.RequestHeader().Set("Authorization", "Bearer "+string(t))
		return conn
	}
}

func (t tokenHeader) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return next
}

// filter are the event filters of search, replay and export.
type filter struct {
	contract, org, actorOrg, actor, typ, aggType, aggID, correlation string
	from, to                                                         string
}

func (f *filter) flags(fs *flag.FlagSet) {
	fs.StringVar(&f.contract, "contract", "", "events of this contract")
	fs.StringVar(&f.org, "org", "", "events of contracts this org is a party to")
	fs.StringVar(&f.actorOrg, "actor-org", "", "events caused by this org")
	fs.StringVar(&f.actor, "actor", "", "events caused by this user")
	fs.StringVar(&f.typ, "type", "", "events of this type, e.g. jsm.contracts.v1.ContractSigned")
	fs.StringVar(&f.aggType, "aggregate-type", "", "events of this aggregate type, e.g. contracts.contract")
	fs.StringVar(&f.aggID, "aggregate", "", "events of this aggregate id")
	fs.StringVar(&f.correlation, "correlation", "", "events of this interaction (correlation id)")
	fs.StringVar(&f.from, "from", "", "events at or after this time (RFC 3339)")
	fs.StringVar(&f.to, "to", "", "events before this time (RFC 3339)")
}

func (f *filter) times() (from, to *timestamppb.Timestamp, err error) {
	parse := func(name, v string) (*timestamppb.Timestamp, error) {
		if v == "" {
			return nil, nil
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return nil, fmt.Errorf("--%s: want an RFC 3339 time such as 2026-11-23T10:00:00Z: %w", name, err)
		}
		return timestamppb.New(t), nil
	}
	if from, err = parse("from", f.from); err != nil {
		return nil, nil, err
	}
	to, err = parse("to", f.to)
	return from, to, err
}

// output prints events as JSON lines or as a table.
type output struct {
	table bool
	w     io.Writer
	tw    *tabwriter.Writer
}

func (o *output) flags(fs *flag.FlagSet) {
	fs.BoolVar(&o.table, "table", false, "print a table instead of JSON lines")
}

func (o *output) event(e *trailv1.Event) error {
	if !o.table {
		b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(e)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(o.w, "%s\n", b)
		return err
	}
	if o.tw == nil {
		o.tw = tabwriter.NewWriter(o.w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(o.tw, "POSITION\tTIME\tACTOR\tTYPE\tAGGREGATE\tCONTRACT\tCORRELATION")
	}
	actor := e.GetActorOrgId()
	if e.GetActor() != "" {
		actor += "/" + e.GetActor()
	}
	_, err := fmt.Fprintf(o.tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetPosition(), e.GetTime().AsTime().Format(time.RFC3339Nano),
		actor, strings.TrimPrefix(e.GetType(), "jsm."), e.GetAggregateType()+"/"+e.GetAggregateId(), e.GetContractId(), e.GetCorrelationId())
	return err
}

func (o *output) flush() error {
	if o.tw != nil {
		return o.tw.Flush()
	}
	return nil
}

// filtered is what search, replay and export share: the server, the
// filters, and once parsed the client and the time range.
type filtered struct {
	client
	filter
	tc       trailv1connect.TrailServiceClient
	from, to *timestamppb.Timestamp
}

func newFiltered(name string, stderr io.Writer) (*filtered, *flag.FlagSet) {
	f := &filtered{}
	fs := newFlagSet(name, stderr)
	f.client.flags(fs)
	f.filter.flags(fs)
	return f, fs
}

func (f *filtered) parse(fs *flag.FlagSet, args []string) (err error) {
	if err = parseNoArgs(fs, args); err != nil {
		return err
	}
	if f.tc, err = f.trail(); err != nil {
		return err
	}
	f.from, f.to, err = f.times()
	return err
}

func runTrailSearch(args []string, stdout, stderr io.Writer) error {
	f, fs := newFiltered("trail search", stderr)
	o := output{w: stdout}
	o.flags(fs)
	var limit int
	fs.IntVar(&limit, "limit", 0, "stop after this many events (0: all)")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	tc, from, to := f.tc, f.from, f.to
	req := &trailv1.SearchEventsRequest{
		ContractId: f.contract, OrgId: f.org, ActorOrgId: f.actorOrg, Actor: f.actor, Type: f.typ,
		AggregateType: f.aggType, AggregateId: f.aggID, CorrelationId: f.correlation, FromTime: from, ToTime: to, PageSize: 500,
	}
	n := 0
	for {
		res, err := tc.SearchEvents(context.Background(), connect.NewRequest(req))
		if err != nil {
			return err
		}
		for _, e := range res.Msg.GetEvents() {
			if limit > 0 && n == limit {
				return o.flush()
			}
			if err := o.event(e); err != nil {
				return err
			}
			n++
		}
		if res.Msg.GetNextPageToken() == "" {
			return o.flush()
		}
		req.PageToken = res.Msg.GetNextPageToken()
	}
}

func runTrailReplay(args []string, stdout, stderr io.Writer) error {
	f, fs := newFiltered("trail replay", stderr)
	o := output{w: stdout}
	o.flags(fs)
	var fromPosition uint64
	fs.Uint64Var(&fromPosition, "from-position", 0, "replay from this stream position (inclusive)")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	tc, from, to := f.tc, f.from, f.to
	stream, err := tc.ReplayEvents(context.Background(), connect.NewRequest(&trailv1.ReplayEventsRequest{
		ContractId: f.contract, OrgId: f.org, ActorOrgId: f.actorOrg, Actor: f.actor, Type: f.typ,
		AggregateType: f.aggType, AggregateId: f.aggID, CorrelationId: f.correlation, FromTime: from, ToTime: to, FromPosition: fromPosition,
	}))
	if err != nil {
		return err
	}
	defer stream.Close()
	for stream.Receive() {
		for _, e := range stream.Msg().GetEvents() {
			if err := o.event(e); err != nil {
				return err
			}
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	return o.flush()
}

func runTrailExport(args []string, stdout, stderr io.Writer) error {
	f, fs := newFiltered("trail export", stderr)
	var out string
	fs.StringVar(&out, "out", "", "write the export to this file (default: standard output)")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	tc, from, to := f.tc, f.from, f.to
	res, err := tc.ExportInvestigation(context.Background(), connect.NewRequest(&trailv1.ExportInvestigationRequest{
		ContractId: f.contract, OrgId: f.org, ActorOrgId: f.actorOrg, Actor: f.actor, Type: f.typ,
		AggregateType: f.aggType, AggregateId: f.aggID, CorrelationId: f.correlation, FromTime: from, ToTime: to,
	}))
	if err != nil {
		return err
	}
	if out == "" {
		_, err = stdout.Write(res.Msg.GetContent())
		return err
	}
	if err := writePrivateFile(out, res.Msg.GetContent()); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "exported %d events, proven against the checkpoint of %d entries, to %s\n", res.Msg.GetEvents(), res.Msg.GetTreeSize(), out)
	return nil
}

func runTrailVerify(args []string, stdout, stderr io.Writer) error {
	var key, signerKeys string
	fs := newFlagSet("trail verify", stderr)
	fs.StringVar(&key, "key", "", "the trail's verifier key you trust (from GetCheckpoint or your witness file); default: the key in the file, which proves only that the file is intact")
	fs.StringVar(&signerKeys, "signer-keys", "", "the services' event signer keys you pin (verifier keys <area>+<hash>+..., space or comma separated, as JSM_TRAIL_SIGNER_KEYS); default: those the file's manifest lists, signed by the trail's key")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("trail verify: want one export FILE")
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	opts := ledger.VerifyOptions{Key: key, Render: ledger.RenderData}
	if signerKeys != "" {
		if opts.SignerKeys, err = eventsig.ParseKeys(signerKeys); err != nil {
			return fmt.Errorf("--signer-keys: %w", err)
		}
	}
	x, err := ledger.ParseExport(data)
	if err != nil {
		return fmt.Errorf("verify %s: FAILED: %w", fs.Arg(0), err)
	}
	if key == "" {
		fmt.Fprintln(stderr, "warning: no --key given; checking against the key inside the file")
	}
	c, err := ledger.VerifyWith(x, opts)
	if err != nil {
		return fmt.Errorf("verify %s: FAILED: %w", fs.Arg(0), err)
	}
	signers := "signer keys of the signed manifest"
	if opts.SignerKeys != nil {
		signers = "the signer keys you pinned"
	}
	_, err = fmt.Fprintf(stdout, "OK: %d entries verified against the checkpoint of %s at size %d (root %s); event signatures against %s; data re-rendered from the payloads\n",
		len(x.Entries), c.Origin, c.Size, c.Root, signers)
	return err
}

// runTrailQuarantine lists the events the trail refused to log (the
// platform operator's view: a token with the platform-operator role).
func runTrailQuarantine(args []string, stdout, stderr io.Writer) error {
	var c client
	var after uint64
	fs := newFlagSet("trail quarantine", stderr)
	c.flags(fs)
	fs.Uint64Var(&after, "after", 0, "list events after this stream position")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	tc, err := c.trail()
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "POSITION\tREASON\tSIGNER\tTYPE\tAGGREGATE\tACTOR\tDETAIL")
	for {
		res, err := tc.ListQuarantine(context.Background(), connect.NewRequest(&trailv1.ListQuarantineRequest{AfterPosition: after}))
		if err != nil {
			return err
		}
		for _, q := range res.Msg.GetEvents() {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", q.GetPosition(), q.GetReason(), q.GetSigner(), q.GetType(),
				q.GetAggregateType()+"/"+q.GetAggregateId(), q.GetActorOrgId()+"/"+q.GetActor(), q.GetDetail())
			after = q.GetPosition()
		}
		if len(res.Msg.GetEvents()) == 0 {
			return tw.Flush()
		}
	}
}

// witnessState is what `jsm trail witness` keeps between runs.
type witnessState struct {
	VerifierKey string   `json:"verifier_key"`
	Checkpoints []string `json:"checkpoints"` // signed notes, oldest first
}

func runTrailWitness(args []string, stdout, stderr io.Writer) error {
	var c client
	var file, key string
	fs := newFlagSet("trail witness", stderr)
	c.flags(fs)
	fs.StringVar(&file, "state", "trail-witness.json", "file keeping the checkpoints seen so far (outside the platform)")
	fs.StringVar(&key, "key", "", "the trail's verifier key; default: the one stored in --state, else the server's (trusted on first use)")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	tc, err := c.trail()
	if err != nil {
		return err
	}
	var st witnessState
	switch data, err := os.ReadFile(file); {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return err
	default:
		if err := json.Unmarshal(data, &st); err != nil {
			return fmt.Errorf("witness state %s: %w", file, err)
		}
	}
	ctx := context.Background()
	latest, err := tc.GetCheckpoint(ctx, connect.NewRequest(&trailv1.GetCheckpointRequest{}))
	if err != nil {
		return err
	}
	switch {
	case key != "" && st.VerifierKey != "" && key != st.VerifierKey:
		return fmt.Errorf("witness: --key differs from the key in %s", file)
	case key == "" && st.VerifierKey != "":
		key = st.VerifierKey
	case key == "":
		key = latest.Msg.GetVerifierKey()
		fmt.Fprintf(stderr, "trusting the server's key on first use: %s\n", key)
	}
	newer, err := ledger.OpenCheckpoint(latest.Msg.GetCheckpoint(), key)
	if err != nil {
		return fmt.Errorf("witness: INCONSISTENT: the latest checkpoint does not verify: %w", err)
	}
	if n := len(st.Checkpoints); n > 0 {
		older, err := ledger.OpenCheckpoint(st.Checkpoints[n-1], key)
		if err != nil {
			return fmt.Errorf("witness: stored checkpoint: %w", err)
		}
		var proof tlog.TreeProof
		if older.Size > 0 && newer.Size > older.Size {
			res, err := tc.GetConsistencyProof(ctx, connect.NewRequest(&trailv1.GetConsistencyProofRequest{FirstSize: uint64(older.Size), SecondSize: uint64(newer.Size)}))
			if err != nil {
				return err
			}
			for _, h := range res.Msg.GetProof() {
				if len(h) != tlog.HashSize {
					return errors.New("witness: INCONSISTENT: malformed consistency proof")
				}
				proof = append(proof, tlog.Hash(h))
			}
		}
		if err := ledger.CheckConsistency(older, newer, proof); err != nil {
			return fmt.Errorf("witness: INCONSISTENT: the log rewrote its history: %w", err)
		}
		if newer.Size == older.Size {
			_, err := fmt.Fprintf(stdout, "unchanged: %d entries, root %s\n", newer.Size, newer.Root)
			return err
		}
	}
	st.VerifierKey = key
	st.Checkpoints = append(st.Checkpoints, latest.Msg.GetCheckpoint())
	data, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(file, data); err != nil {
		return err
	}
	_, err = fmt.Fprintf(stdout, "consistent: %d entries, root %s (%d checkpoints kept in %s)\n", newer.Size, newer.Root, len(st.Checkpoints), file)
	return err
}

// writePrivateFile writes data to path readable by its owner only (0600),
// also when path already existed with wider permissions: an export holds
// what two orgs did, beyond what others on the machine may read.
func writePrivateFile(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	_, err = f.Write(data)
	return err
}

// writeFileAtomic replaces path with data, never leaving half a file.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func parseNoArgs(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected arguments %q", fs.Name(), fs.Args())
	}
	return nil
}

func runTimelineCommand(args []string, stdout, stderr io.Writer) error {
	var c client
	var correlation string
	var jsonOut bool
	fs := newFlagSet("timeline", stderr)
	c.flags(fs)
	fs.StringVar(&correlation, "correlation", "", "the interaction's correlation id (required)")
	fs.BoolVar(&jsonOut, "json", false, "print JSON lines instead of a timeline")
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if correlation == "" {
		return errors.New("timeline: --correlation is required")
	}
	tc, err := c.trail()
	if err != nil {
		return err
	}
	stream, err := tc.ReplayEvents(context.Background(), connect.NewRequest(&trailv1.ReplayEventsRequest{CorrelationId: correlation}))
	if err != nil {
		return err
	}
	defer stream.Close()
	o := output{w: stdout}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	n := 0
	var start time.Time
	for stream.Receive() {
		for _, e := range stream.Msg().GetEvents() {
			if jsonOut {
				if err := o.event(e); err != nil {
					return err
				}
				continue
			}
			if n == 0 {
				start = e.GetTime().AsTime()
				fmt.Fprintf(tw, "interaction %s\n", correlation)
				fmt.Fprintln(tw, "WHEN\t+\tWHO\tROLE\tWHAT\tAREA\tON")
			}
			n++
			area, _, _ := strings.Cut(e.GetAggregateType(), ".")
			who := e.GetActorOrgId()
			if e.GetActor() != "" {
				who += "/" + e.GetActor()
			}
			what := e.GetType()[strings.LastIndex(e.GetType(), ".")+1:]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.GetTime().AsTime().Format(time.RFC3339), e.GetTime().AsTime().Sub(start).Round(time.Millisecond),
				who, e.GetActorRole(), what, area, e.GetAggregateType()+"/"+e.GetAggregateId())
		}
	}
	if err := stream.Err(); err != nil {
		return err
	}
	if !jsonOut && n == 0 {
		return fmt.Errorf("timeline: no events of interaction %q visible to your org", correlation)
	}
	return tw.Flush()
}
