// Package cluster runs the production topology on one machine without
// containers: three NATS JetStream servers as separate processes (built from
// the nats-server module version the workspace pins), a PostgreSQL cluster
// (libs/pglocal) and every service of the repository as its own process,
// all on loopback. `jsm cluster up|down|status` and the fault tests in e2e/
// both use it.
//
// Every process is started in its own session, so `jsm cluster up` can
// return and leave it running; a state file in the data folder records what
// runs where, so `jsm cluster down` finds it again.
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/jsmplatform/jsm/libs/auth"
	"github.com/jsmplatform/jsm/libs/eventsig"
	"github.com/jsmplatform/jsm/libs/natsauth"
	"github.com/jsmplatform/jsm/libs/natsx"
	"github.com/jsmplatform/jsm/libs/pglocal"
	"github.com/jsmplatform/jsm/libs/svcmain"
	"github.com/jsmplatform/jsm/services/trail"
)

// Nodes is the size of the NATS cluster: the smallest one that keeps a
// quorum of an R3 stream when one node is lost.
const Nodes = 3

// Database is the PostgreSQL database every service keeps its schema in.
const Database = "jsm"

// natsModule is built at the version the workspace's go.mod files pin.
const natsModule = "github.com/nats-io/nats-server/v2"

// StateFile, in the data folder, records the running cluster.
const StateFile = "cluster.json"

// Secrets a service needs besides the common settings: environment variable
// and the file in the data folder that keeps its value across restarts. A
// service not listed gets none of them.
var secrets = map[string]struct{ env, file string }{
	"trail":       {"JSM_TRAIL_SIGNING_KEY", trail.KeyFile},
	"integration": {"JSM_INTEGRATION_MASTER_KEY", "integration-master.key"},
}

// eventKeysOf gives every service but the trail (which appends nothing)
// its own event signing key, kept in dir (0600), and returns the keys by
// service and the verifier keys the trail pins.
func eventKeysOf(dir string, names []string) (map[string]string, []string, error) {
	keys := map[string]string{}
	var pinned []string
	for _, name := range names {
		if name == "trail" {
			continue
		}
		_, vkey, err := eventsig.LoadOrCreate(dir, name)
		if err != nil {
			return nil, nil, err
		}
		skey, err := os.ReadFile(filepath.Join(dir, name+".key"))
		if err != nil {
			return nil, nil, err
		}
		keys[name], pinned = strings.TrimSpace(string(skey)), append(pinned, vkey)
	}
	return keys, pinned, nil
}

// Config says where the cluster lives and how it is reached.
type Config struct {
	// Root is the repository's root (it holds go.work and services/).
	Root string
	// DataDir holds the NATS stores, PostgreSQL, keys, logs and the state file.
	DataDir string
	// BinDir receives the built binaries (default Root/bin).
	BinDir string
	// Services to run, by name (services/<name>/cmd/<name>); nil runs every
	// one the repository has.
	Services []string
	// FixedPorts uses the well-known ports (NATS 4222-4224, routes 6222-6224,
	// monitoring 8222-8224, each service its own default listen address)
	// instead of free ones; tests leave it false.
	FixedPorts bool
	// Env is added to every service's environment (e.g. JSM_LOG_LEVEL).
	Env []string
	// Attached ties the processes to this one: they are killed when it
	// dies, so a test binary cut short by its timeout leaves nothing behind.
	Attached bool
	Logger   *slog.Logger
}

// Cluster is a running cluster.
type Cluster struct {
	DataDir  string  `json:"data_dir"`
	NATS     []*Proc `json:"nats"`
	Services []*Proc `json:"services"`
	// NATSURLs lists every node's client URL, comma-separated, as the
	// services get it.
	NATSURLs string `json:"nats_urls"`
	// DSN reaches the services' database as the superuser.
	DSN        string `json:"dsn"`
	PostgresAt string `json:"postgres_dir"`

	pg       *pglocal.Cluster
	attached bool
	log      *slog.Logger
}

// Proc is one process of the cluster.
type Proc struct {
	Name string   `json:"name"`
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"` // added to the environment
	Log  string   `json:"log"`
	PID  int      `json:"pid"`
	// URL is a NATS node's client URL or a service's HTTP base URL.
	URL string `json:"url"`
	// Health answers 200 when the process is ready: a NATS node's
	// monitoring /healthz, a service's /readyz.
	Health string `json:"health"`

	mu     sync.Mutex
	exited chan struct{} // closed when the process this Proc started exits
}

// Build compiles nats-server and every services/*/cmd/* into binDir and
// returns the services' names, sorted.
func Build(ctx context.Context, root, binDir string) ([]string, error) {
	mains, err := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*", "main.go"))
	if err != nil {
		return nil, err
	}
	var names []string
	pkgs := []string{natsModule}
	for _, m := range mains {
		dir := filepath.Dir(m)
		names = append(names, filepath.Base(dir))
		rel, err := filepath.Rel(root, dir)
		if err != nil {
			return nil, err
		}
		pkgs = append(pkgs, "./"+filepath.ToSlash(rel))
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("cluster: no services/*/cmd/* under %s", root)
	}
	slices.Sort(names)
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	// One go build links them all in parallel; a trailing slash makes -o a
	// folder. Without DWARF tables linking takes half the time; panics
	// still show their stacks.
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-ldflags=-s -w", "-o", binDir + string(filepath.Separator)}, pkgs...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cluster: go build: %w\n%s", err, out)
	}
	return names, nil
}

// Start builds the binaries and starts the cluster, then waits until every
// NATS node is healthy and every service ready. On failure it stops what it
// started.
func Start(ctx context.Context, cfg Config) (c *Cluster, err error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Root == "" {
		return nil, errors.New("cluster: Root is required")
	}
	if cfg.Root, err = filepath.Abs(cfg.Root); err != nil {
		return nil, err
	}
	if cfg.BinDir == "" {
		cfg.BinDir = filepath.Join(cfg.Root, "bin")
	}
	if cfg.BinDir, err = filepath.Abs(cfg.BinDir); err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, StateFile)); err == nil {
		if old, lerr := Load(dataDir); lerr == nil && old.Running() {
			return nil, fmt.Errorf("cluster: already running in %s (jsm cluster down first)", dataDir)
		}
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	// PostgreSQL runs as its own user when we are root: let it in.
	if err := os.Chmod(dataDir, 0o755); err != nil {
		return nil, err
	}
	log := cfg.Logger
	start := time.Now()
	c = &Cluster{DataDir: dataDir, attached: cfg.Attached, log: log}
	defer func() {
		if err != nil {
			_ = c.Stop(context.WithoutCancel(ctx), false)
		}
	}()
	// PostgreSQL initialises while the binaries link.
	var all []string
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		all, err = Build(gctx, cfg.Root, cfg.BinDir)
		return err
	})
	g.Go(func() error { return c.startPostgres(gctx) })
	if err := g.Wait(); err != nil {
		return c, err
	}
	names := cfg.Services
	if names == nil {
		names = all
	}
	for _, n := range names {
		if !slices.Contains(all, n) {
			return c, fmt.Errorf("cluster: no service %q (have %v)", n, all)
		}
	}
	log.Info("built", "services", names, "took", time.Since(start).Round(time.Millisecond))

	if err := c.startNATS(ctx, cfg); err != nil {
		return c, err
	}
	if err := c.startServices(ctx, cfg, names); err != nil {
		return c, err
	}
	if err := c.save(); err != nil {
		return c, err
	}
	log.Info("cluster is up", "took", time.Since(start).Round(time.Millisecond))
	return c, nil
}

// ports returns n free loopback ports, or base+i with fixed ones.
func ports(n, base int, fixed bool) ([]int, error) {
	out := make([]int, n)
	for i := range out {
		if fixed {
			out[i] = base + i
			continue
		}
		// Held open until all are picked, so no two are the same.
		l, err := freeListener()
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out[i] = l.Addr().(*net.TCPAddr).Port
	}
	return out, nil
}

// freeListener listens on a free port below Linux's ephemeral range
// (32768 and up): a port the kernel picked for "port 0" is in that range,
// and between closing it here and the process listening on it, any
// outgoing connection of a busy machine (other tests) may take it as its
// own port; below the range only another listener can.
func freeListener() (net.Listener, error) {
	var err error
	for range 200 {
		var l net.Listener
		if l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+mrand.IntN(12000))); err == nil {
			return l, nil
		}
	}
	return nil, fmt.Errorf("cluster: no free port: %w", err)
}

// FreePort is a free port below the ephemeral range (see freeListener),
// for a process about to be told to listen on it.
func FreePort() (int, error) {
	l, err := freeListener()
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) startNATS(ctx context.Context, cfg Config) error {
	client, err := ports(Nodes, 4222, cfg.FixedPorts)
	if err != nil {
		return err
	}
	route, err := ports(Nodes, 6222, cfg.FixedPorts)
	if err != nil {
		return err
	}
	monitor, err := ports(Nodes, 8222, cfg.FixedPorts)
	if err != nil {
		return err
	}
	// The users of libs/natsauth, their passwords kept in the data dir.
	nauth, err := natsauth.LoadOrCreate(c.DataDir)
	if err != nil {
		return err
	}
	issuer, err := nauth.IssuerPublic()
	if err != nil {
		return err
	}
	users := natsauth.Conf(func(u string) string { return natsauth.Quote(nauth.Passwords[u]) }, natsauth.Quote(issuer))
	var urls []string
	for i := range Nodes {
		name := fmt.Sprintf("nats-%d", i+1)
		var routes []string
		for j := range Nodes {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", route[j]))
			}
		}
		conf := filepath.Join(c.DataDir, name+".conf")
		if err := os.WriteFile(conf, []byte(nodeConfig(name, client[i], route[i], monitor[i], filepath.Join(c.DataDir, name), routes)+"\n"+users), 0o600); err != nil {
			return err
		}
		p := &Proc{
			Name:   name,
			Args:   []string{filepath.Join(cfg.BinDir, "nats-server"), "--config", conf},
			Log:    filepath.Join(c.DataDir, "logs", name+".log"),
			URL:    fmt.Sprintf("nats://127.0.0.1:%d", client[i]),
			Health: fmt.Sprintf("http://127.0.0.1:%d/healthz", monitor[i]),
		}
		c.NATS = append(c.NATS, p)
		urls = append(urls, p.URL)
	}
	c.NATSURLs = strings.Join(urls, ",")
	for _, p := range c.NATS {
		if err := c.Launch(p); err != nil {
			return err
		}
	}
	return c.waitHealthy(ctx, c.NATS, time.Minute)
}

// nodeConfig is one node's configuration, deploy/nats/jsm-events.conf with
// loopback addresses. The meta leader needs a quorum of the routes, so all
// three come up together.
func nodeConfig(name string, client, route, monitor int, store string, routes []string) string {
	return fmt.Sprintf(`# written by jsm cluster up
server_name: %s
listen: 127.0.0.1:%d
http: 127.0.0.1:%d
max_payload: 8MB

jetstream {
  store_dir: %q
  # fsync before every ack: an acknowledged event survives a power cut.
  sync_interval: always
}

cluster {
  name: jsm
  listen: 127.0.0.1:%d
  routes: [
    %s
  ]
}
`, name, client, monitor, store, route, strings.Join(routes, "\n    "))
}

func (c *Cluster) startPostgres(ctx context.Context) error {
	pg, err := pglocal.Start(ctx, filepath.Join(c.DataDir, "postgres"), 0, pgOptions...)
	if err != nil {
		return err
	}
	c.pg = pg
	c.PostgresAt = pg.Dir
	if c.attached {
		if err := pg.StopOnExit(false); err != nil {
			return err
		}
	}
	if err := CreateDatabase(ctx, pg.DSN("postgres"), Database); err != nil {
		return err
	}
	c.DSN = pg.DSN(Database)
	return nil
}

// Every service holds a pool of its own, twice over while a test rebuilds
// the read models beside them.
var pgOptions = []pglocal.Option{pglocal.MaxConnections(300)}

// StartPostgres starts the cluster's PostgreSQL again on its port, e.g.
// after a fault test stopped it with pg_ctl -m immediate.
func (c *Cluster) StartPostgres(ctx context.Context) error {
	pg, err := pglocal.Start(ctx, c.PostgresAt, c.pg.Port, pgOptions...)
	if err != nil {
		return err
	}
	c.pg = pg
	return nil
}

// Postgres is the cluster's PostgreSQL.
func (c *Cluster) Postgres() (*pglocal.Cluster, error) {
	if c.pg == nil {
		pg, err := pglocal.Start(context.Background(), c.PostgresAt, 0)
		if err != nil {
			return nil, err
		}
		c.pg = pg
	}
	return c.pg, nil
}

func (c *Cluster) startServices(ctx context.Context, cfg Config, names []string) error {
	key, err := auth.LoadOrCreateDevKey(c.DataDir)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return err
	}
	pubKey := filepath.Join(c.DataDir, "jwt-public-key.pem")
	if err := os.WriteFile(pubKey, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	// Ingest signs with a key of its own (0600 in the data dir), which only
	// the services it drives trust, and for sources only.
	integrationKey, err := auth.LoadOrCreateKey(c.DataDir, auth.IntegrationKeyFile)
	if err != nil {
		return err
	}
	der, err = x509.MarshalPKIXPublicKey(integrationKey.Public())
	if err != nil {
		return err
	}
	integrationPub := filepath.Join(c.DataDir, "integration-public-key.pem")
	if err := os.WriteFile(integrationPub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		return err
	}
	free, err := ports(len(names), 0, false)
	if err != nil {
		return err
	}
	listens := make(map[string]string, len(names))
	for i, name := range names {
		listens[name] = fmt.Sprintf("127.0.0.1:%d", free[i])
		if cfg.FixedPorts {
			if def := defaultListen(ctx, filepath.Join(cfg.BinDir, name)); def != "" {
				listens[name] = def
			}
		}
	}
	eventKeys, signerKeys, err := eventKeysOf(filepath.Join(c.DataDir, "event-keys"), names)
	if err != nil {
		return err
	}
	// Each service logs in to PostgreSQL as its own role, owning its schema
	// alone (c.DSN stays the superuser's, for the operator's tools).
	dsns, err := ProvisionLogins(ctx, c.DSN, c.DataDir, names)
	if err != nil {
		return err
	}
	for _, name := range names {
		bin := filepath.Join(cfg.BinDir, name)
		listen := listens[name]
		env := []string{
			"JSM_LISTEN=" + listen,
			"JSM_NATS_URL=" + c.NATSURLs,
			"JSM_PG_DSN=" + dsns[name],
			"JSM_REPLICAS=3",
			"JSM_JWT_PUBLIC_KEY=" + pubKey,
			// A developer's cluster on loopback shows /metrics and gRPC
			// reflection, which a service hides by default; its rate limits
			// stay the production defaults.
			"JSM_EXPOSE_METRICS=true",
			"JSM_REFLECTION=true",
		}
		if slices.Contains(svcmain.IngestDriven, name) {
			env = append(env, "JSM_INTEGRATION_PUBLIC_KEY="+integrationPub)
		}
		nauth, err := natsauth.LoadOrCreate(c.DataDir)
		if err != nil {
			return err
		}
		env = append(env, "JSM_NATS_USER="+name, "JSM_NATS_PASSWORD="+nauth.Passwords[name])
		if name == "integration" {
			// Sources connect to NATS through the auth callout integration
			// answers; the system user cuts off a disabled one.
			env = append(env,
				"JSM_INTEGRATION_NATS_CALLOUT_SEED="+nauth.CalloutSeed,
				"JSM_INTEGRATION_NATS_SYSTEM_PASSWORD="+nauth.Passwords[natsauth.SystemUser])
			// Ingest calls these services as its sources, with tokens signed
			// by its own key.
			env = append(env,
				"JSM_INTEGRATION_SIGNING_KEY="+filepath.Join(c.DataDir, auth.IntegrationKeyFile),
				"JSM_INTEGRATION_INCIDENTS_URL=http://"+listens["incidents"],
				"JSM_INTEGRATION_PATCHING_URL=http://"+listens["patching"],
				"JSM_INTEGRATION_CHANGEADVISORY_URL=http://"+listens["changeadvisory"])
		}
		if k, ok := eventKeys[name]; ok {
			env = append(env, "JSM_EVENT_SIGNING_KEY="+k)
		}
		if name == "trail" {
			env = append(env, "JSM_TRAIL_SIGNER_KEYS="+strings.Join(signerKeys, " "))
		}
		if s, ok := secrets[name]; ok {
			v, err := c.secret(name, s.file)
			if err != nil {
				return err
			}
			env = append(env, s.env+"="+v)
		}
		p := &Proc{
			Name:   name,
			Args:   []string{bin},
			Env:    append(env, cfg.Env...),
			Log:    filepath.Join(c.DataDir, "logs", name+".log"),
			URL:    "http://" + listen,
			Health: "http://" + listen + "/readyz",
		}
		c.Services = append(c.Services, p)
		if err := c.Launch(p); err != nil {
			return err
		}
	}
	return c.waitHealthy(ctx, c.Services, 2*time.Minute)
}

// Spawn starts one more instance of the named service on a free port, its
// environment changed by env (e.g. JSM_PG_DSN of another database), and
// waits until it is ready. Stop stops it with the rest.
func (c *Cluster) Spawn(ctx context.Context, name string, env ...string) (*Proc, error) {
	base := c.Service(name)
	if base == nil {
		return nil, fmt.Errorf("cluster: no service %q", name)
	}
	port, err := ports(1, 0, false)
	if err != nil {
		return nil, err
	}
	listen := fmt.Sprintf("127.0.0.1:%d", port[0])
	n := len(c.Services)
	p := &Proc{
		Name: fmt.Sprintf("%s-%d", name, n),
		Args: base.Args,
		// Later values win (os/exec keeps the last of duplicate keys).
		Env:    append(append(slices.Clone(base.Env), "JSM_LISTEN="+listen), env...),
		Log:    filepath.Join(c.DataDir, "logs", fmt.Sprintf("%s-%d.log", name, n)),
		URL:    "http://" + listen,
		Health: "http://" + listen + "/readyz",
	}
	c.Services = append(c.Services, p)
	if err := c.Launch(p); err != nil {
		return nil, err
	}
	return p, c.WaitHealthy(ctx, p, 2*time.Minute)
}

// secret returns the value kept in the data folder's file, creating it.
func (c *Cluster) secret(service, file string) (string, error) {
	if service == "trail" {
		// A new key names a log of its own (a random origin kept with it):
		// a witness following two clusters tells their checkpoints apart.
		return trail.LoadOrCreateKey(c.DataDir, trail.NewOrigin())
	}
	path := filepath.Join(c.DataDir, file)
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	v := base64.StdEncoding.EncodeToString(key)
	return v, os.WriteFile(path, []byte(v+"\n"), 0o600)
}

// defaultListen asks a service binary for its default listen address (its
// -h output), so the cluster serves each where it serves alone.
func defaultListen(ctx context.Context, bin string) string {
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	m := regexp.MustCompile(`-listen string\s+[^\n]*\(default "([^"]+)"\)`).FindSubmatch(out)
	if m == nil {
		return ""
	}
	return string(m[1])
}

// Launch starts p (again) with its arguments and environment, its output
// appended to its log.
func (c *Cluster) Launch(p *Proc) error {
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(p.Args[0], p.Args[1:]...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if c.attached {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("cluster: start %s: %w", p.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reaps it, so a killed process does not linger as a zombie
		close(exited)
	}()
	p.mu.Lock()
	p.PID, p.exited = cmd.Process.Pid, exited
	p.mu.Unlock()
	c.log.Debug("started", "proc", p.Name, "pid", p.PID)
	return nil
}

// Signal sends sig to p's process.
func (p *Proc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	pid := p.PID
	p.mu.Unlock()
	if pid <= 0 {
		return fmt.Errorf("%s: not started", p.Name)
	}
	return syscall.Kill(pid, sig)
}

// Alive reports whether p's process runs (a stopped one counts as running).
func (p *Proc) Alive() bool {
	p.mu.Lock()
	pid, exited := p.PID, p.exited
	p.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
			return false
		default:
			return true
		}
	}
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

// Wait waits until p's process has exited, at most max.
func (p *Proc) Wait(max time.Duration) bool {
	deadline := time.Now().Add(max)
	for p.Alive() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Kill sends SIGKILL and waits until the process is gone.
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if !p.Wait(10 * time.Second) {
		return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
	}
	return nil
}

// Healthy reports whether p answers 200 on its health URL.
func (p *Proc) Healthy() bool {
	client := http.Client{Timeout: 2 * time.Second}
	resp, err := client.Get(p.Health)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// WaitHealthy waits until p is healthy, at most max.
func (c *Cluster) WaitHealthy(ctx context.Context, p *Proc, max time.Duration) error {
	return c.waitHealthy(ctx, []*Proc{p}, max)
}

func (c *Cluster) waitHealthy(ctx context.Context, procs []*Proc, max time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range procs {
		g.Go(func() error {
			for !p.Healthy() {
				if !p.Alive() {
					return fmt.Errorf("cluster: %s exited; its log:\n%s", p.Name, tail(p.Log))
				}
				select {
				case <-ctx.Done():
					return fmt.Errorf("cluster: %s not ready at %s: %w; its log:\n%s", p.Name, p.Health, ctx.Err(), tail(p.Log))
				case <-time.After(100 * time.Millisecond):
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// Service returns the named service's process, nil if it does not run.
func (c *Cluster) Service(name string) *Proc {
	for _, p := range c.Services {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Running reports whether any process of the cluster still runs.
func (c *Cluster) Running() bool {
	for _, p := range append(slices.Clone(c.NATS), c.Services...) {
		if p.Alive() {
			return true
		}
	}
	return false
}

// Stop stops the services (SIGTERM: they finish in-flight work), then the
// NATS nodes and PostgreSQL; with purge it deletes the data folder too.
// What does not stop within 30 s is killed.
func (c *Cluster) Stop(ctx context.Context, purge bool) error {
	var errs []error
	stop := func(procs []*Proc) {
		for _, p := range procs {
			if p.Alive() {
				_ = p.Signal(syscall.SIGCONT) // a paused process cannot stop
				_ = p.Signal(syscall.SIGTERM)
			}
		}
		for _, p := range procs {
			if !p.Wait(30 * time.Second) {
				errs = append(errs, fmt.Errorf("%s did not stop within 30s of SIGTERM; killed", p.Name))
				_ = p.Kill()
			}
		}
	}
	stop(c.Services)
	stop(c.NATS)
	if c.PostgresAt != "" {
		if pg, err := c.Postgres(); err == nil {
			errs = append(errs, pg.Stop(ctx))
		} else {
			errs = append(errs, err)
		}
	}
	if purge {
		errs = append(errs, os.RemoveAll(c.DataDir))
	} else {
		errs = append(errs, c.save())
	}
	return errors.Join(errs...)
}

func (c *Cluster) save() error {
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	// The services' environments hold their secrets.
	return os.WriteFile(filepath.Join(c.DataDir, StateFile), b, 0o600)
}

// NATSCredentials are user's (natsauth.AdminUser for an operator's tools)
// on the cluster's NATS.
func (c *Cluster) NATSCredentials(user string) (natsx.Credentials, error) {
	nauth, err := natsauth.LoadOrCreate(c.DataDir)
	if err != nil {
		return natsx.Credentials{}, err
	}
	return natsx.Credentials{User: user, Password: nauth.Passwords[user]}, nil
}

// Load reads the state file of the cluster in dataDir.
func Load(dataDir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("cluster: no cluster in %s: %w", dataDir, err)
	}
	c := &Cluster{log: slog.Default()}
	if err := json.Unmarshal(b, c); err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", StateFile, err)
	}
	// A pid of an exited process may have been reused by another program:
	// only a process still running our binary counts.
	for _, p := range append(slices.Clone(c.NATS), c.Services...) {
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.PID)); err != nil || strings.TrimSuffix(exe, " (deleted)") != p.Args[0] {
			p.PID = 0
		}
	}
	return c, nil
}

// CreateDatabase creates database unless it exists.
func CreateDatabase(ctx context.Context, adminDSN, name string) error {
	conn, err := pgx.Connect(ctx, adminDSN)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize())
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	if err != nil {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// tail is the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
