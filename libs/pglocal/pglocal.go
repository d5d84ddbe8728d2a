// Package pglocal runs a throwaway or persistent PostgreSQL cluster from the
// machine's server binaries (Debian: /usr/lib/postgresql/<version>/bin;
// tools/scripts/ensure-postgres.sh installs them where they are missing).
//
// A cluster lives in one folder: Dir/data holds the data, Dir/postgres.log
// the server log and Dir the unix socket. The server listens on 127.0.0.1
// only, trusts every local connection and has the superuser "postgres".
// initdb refuses to run as root, so as root the binaries run as the
// "postgres" user (runuser) and Dir is handed to that user.
package pglocal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Superuser is the name of the cluster's superuser (trust authentication).
const Superuser = "postgres"

// osUser is the system user the binaries run as when the process is root.
const osUser = "postgres"

// Cluster is a PostgreSQL cluster in Dir, served on 127.0.0.1:Port.
type Cluster struct {
	Dir    string // absolute; data in Dir/data, log in Dir/postgres.log, socket in Dir
	Port   int
	BinDir string // the PostgreSQL binaries used
	// Reused is true when Start found the cluster already running (an
	// earlier process started it) and attached to it instead of starting it.
	Reused bool

	cfg      config
	asRoot   bool
	uid, gid int // of osUser when asRoot
}

type config struct {
	settings [][2]string
	noSync   bool
	timeout  time.Duration
}

// Option adjusts Start.
type Option func(*config)

// Setting passes a server setting on the command line (postgres -c
// name=value); later settings of the same name win. They apply to every
// start, not to a cluster that is already running and reused.
func Setting(name, value string) Option {
	return func(c *config) { c.settings = append(c.settings, [2]string{name, value}) }
}

// MaxConnections sets max_connections.
func MaxConnections(n int) Option { return Setting("max_connections", strconv.Itoa(n)) }

// SharedBuffers sets shared_buffers (e.g. "128MB").
func SharedBuffers(size string) Option { return Setting("shared_buffers", size) }

// Unsafe trades durability for speed, for tests: initdb --no-sync, fsync=off,
// synchronous_commit=off, full_page_writes=off. A crash of the machine (not
// of the server) can corrupt such a cluster.
func Unsafe() Option {
	return func(c *config) {
		c.noSync = true
		c.settings = append(c.settings,
			[2]string{"fsync", "off"},
			[2]string{"synchronous_commit", "off"},
			[2]string{"full_page_writes", "off"},
		)
	}
}

// StartTimeout bounds how long Start (and Stop) wait for the server; the
// default is 60 s. A context deadline, when earlier, wins.
func StartTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// BinDir returns the folder of the PostgreSQL server binaries: $PG_BIN when
// set, otherwise the highest /usr/lib/postgresql/<version>/bin that has
// initdb.
func BinDir() (string, error) {
	if d := os.Getenv("PG_BIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err != nil {
			return "", fmt.Errorf("pglocal: PG_BIN=%s: %w", d, err)
		}
		return d, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	best, bestVer := "", -1.0
	for _, m := range matches {
		bin := filepath.Dir(m)
		v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(bin)), 64)
		if err != nil {
			v = 0
		}
		if v > bestVer {
			best, bestVer = bin, v
		}
	}
	if best == "" {
		return "", errors.New("pglocal: no PostgreSQL server binaries in /usr/lib/postgresql/*/bin " +
			"(run tools/scripts/ensure-postgres.sh or set PG_BIN)")
	}
	return best, nil
}

// Start initialises Dir when Dir/data holds no cluster yet (initdb) and
// reuses it otherwise, then starts the server on 127.0.0.1:port (0 picks a
// free port) and waits until it accepts connections. When the cluster of
// Dir is already running (e.g. left by an earlier process), Start attaches
// to it on the port it runs on, whatever port says. A postmaster.pid left
// by a crash does not prevent the start.
func Start(ctx context.Context, dir string, port int, opts ...Option) (*Cluster, error) {
	cfg := config{timeout: 60 * time.Second}
	for _, o := range opts {
		o(&cfg)
	}
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	if dir == "" {
		return nil, errors.New("pglocal: dir required")
	}
	dir, err = filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("pglocal: %w", err)
	}
	c := &Cluster{Dir: dir, Port: port, BinDir: bin, cfg: cfg}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(osUser)
		if err != nil {
			return nil, fmt.Errorf("pglocal: running as root needs the %q system user: %w", osUser, err)
		}
		c.asRoot = true
		c.uid, _ = strconv.Atoi(u.Uid)
		c.gid, _ = strconv.Atoi(u.Gid)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	if err := c.prepareDir(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(c.DataDir(), "PG_VERSION")); err != nil {
		if err := c.initdb(ctx); err != nil {
			return nil, err
		}
	}
	if p, ok := c.runningPort(); ok {
		c.Port, c.Reused = p, true
		if err := c.waitReady(ctx); err != nil {
			return nil, fmt.Errorf("pglocal: cluster in %s is running on port %d but not ready: %w", c.Dir, p, err)
		}
		return c, nil
	}
	if err := c.start(ctx, port); err != nil {
		return nil, err
	}
	return c, nil
}

// DataDir is Dir/data.
func (c *Cluster) DataDir() string { return filepath.Join(c.Dir, "data") }

// LogFile is Dir/postgres.log.
func (c *Cluster) LogFile() string { return filepath.Join(c.Dir, "postgres.log") }

// DSN is the connection URL of a database ("" means "postgres") as the
// superuser over TCP.
func (c *Cluster) DSN(database string) string {
	if database == "" {
		database = "postgres"
	}
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/%s?sslmode=disable", Superuser, c.Port, url.PathEscape(database))
}

// Stop shuts the server down cleanly (pg_ctl -m fast) and waits for it. It
// is a no-op when the server is not running.
func (c *Cluster) Stop(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.timeout)
	defer cancel()
	return c.stop(ctx, "fast")
}

// Kill stops the server abruptly (pg_ctl -m immediate): no shutdown
// checkpoint, the next start runs crash recovery. For fault tests.
func (c *Cluster) Kill() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.timeout)
	defer cancel()
	return c.stop(ctx, "immediate")
}

// StopOnExit starts a small detached watchdog that, once this process has
// exited (however it exits), stops the cluster (immediate) and, with
// removeDir, deletes Dir. Throwaway clusters use it so that a test binary
// killed by a timeout leaves no server behind.
func (c *Cluster) StopOnExit(removeDir bool) error {
	stop := shellQuote(c.command("pg_ctl", "stop", "-D", c.DataDir(), "-m", "immediate", "-w", "-t", "30")...)
	script := fmt.Sprintf("while kill -0 %d 2>/dev/null; do sleep 1; done\n"+
		"if [ -f %s ]; then %s >/dev/null 2>&1; fi\n",
		os.Getpid(), shellQuote(filepath.Join(c.DataDir(), "postmaster.pid")), stop)
	if removeDir {
		script += "rm -rf " + shellQuote(c.Dir) + "\n"
	}
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("pglocal: start watchdog: %w", err)
	}
	go cmd.Wait() //nolint:errcheck // reaps the watchdog if it ends before us
	return nil
}

// prepareDir creates Dir and, as root, gives it to the postgres user and
// makes its parents traversable.
func (c *Cluster) prepareDir() error {
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	if !c.asRoot {
		return nil
	}
	fi, err := os.Stat(c.Dir)
	if err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != c.uid {
		// Not (yet) the postgres user's: hand over everything in it.
		err := filepath.WalkDir(c.Dir, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, c.uid, c.gid)
		})
		if err != nil {
			return fmt.Errorf("pglocal: chown %s to %s: %w", c.Dir, osUser, err)
		}
	}
	for p := filepath.Dir(c.Dir); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("pglocal: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(p, fi.Mode().Perm()|0o001); err != nil {
				return fmt.Errorf("pglocal: make %s traversable for %s: %w", p, osUser, err)
			}
			// Traverse only (o+x), not list or read; said aloud all the same.
			slog.Warn("pglocal: made a folder traversable for the database user", "folder", p, "user", osUser)
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

func (c *Cluster) initdb(ctx context.Context) error {
	data := c.DataDir()
	// A data folder without PG_VERSION is the remains of an interrupted initdb.
	if err := os.RemoveAll(data); err != nil {
		return fmt.Errorf("pglocal: %w", err)
	}
	args := []string{"-D", data, "-U", Superuser, "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"}
	if c.cfg.noSync {
		args = append(args, "--no-sync")
	}
	if out, err := c.run(ctx, "initdb", args...); err != nil {
		return fmt.Errorf("pglocal: initdb %s: %w\n%s", data, err, out)
	}
	return nil
}

// runningPort reports whether the cluster's postmaster is running, going by
// postmaster.pid, and on which port. A pid file whose process is gone, or
// is not this cluster's postmaster (a pid reused after a crash), is removed.
func (c *Cluster) runningPort() (int, bool) {
	pidFile := filepath.Join(c.DataDir(), "postmaster.pid")
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(b), "\n")
	if len(lines) < 4 {
		return 0, false // being written or junk; let postgres judge
	}
	pid, err1 := strconv.Atoi(strings.TrimSpace(lines[0]))
	port, err2 := strconv.Atoi(strings.TrimSpace(lines[3]))
	if err1 != nil || err2 != nil || pid <= 0 {
		return 0, false
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		_ = os.Remove(pidFile)
		return 0, false
	}
	// The postmaster runs with the data folder as its working directory.
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err == nil {
		want, werr := filepath.EvalSymlinks(c.DataDir())
		if werr == nil && cwd != want {
			_ = os.Remove(pidFile)
			return 0, false
		}
	}
	return port, true
}

func (c *Cluster) start(ctx context.Context, port int) error {
	const attempts = 5
	var lastErr error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return lastErr
			case <-time.After(time.Duration(i) * 200 * time.Millisecond):
			}
		}
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(); err != nil {
				return fmt.Errorf("pglocal: pick a port: %w", err)
			}
		}
		logOffset := fileSize(c.LogFile())
		out, err := c.run(ctx, "pg_ctl", "start", "-D", c.DataDir(), "-l", c.LogFile(), "-w",
			"-t", strconv.Itoa(c.waitSeconds(ctx)), "-o", c.serverOptions(p))
		if err == nil {
			c.Port = p
			if err := c.waitReady(ctx); err != nil {
				return fmt.Errorf("pglocal: server started on port %d but not ready: %w\n%s", p, err, c.logTail(logOffset))
			}
			return nil
		}
		tail := c.logTail(logOffset)
		lastErr = fmt.Errorf("pglocal: start postgres in %s on port %d: %w\n%s\n--- %s ---\n%s",
			c.Dir, p, err, strings.TrimSpace(string(out)), c.LogFile(), tail)
		transient := strings.Contains(tail, "could not bind") ||
			strings.Contains(tail, "could not create any TCP/IP sockets") ||
			strings.Contains(tail, "shared memory block is still in use") // crashed postmaster's children still exiting
		if !transient {
			return lastErr
		}
		// Maybe a leftover server of this Dir got there first.
		if p, ok := c.runningPort(); ok {
			c.Port, c.Reused = p, true
			return c.waitReady(ctx)
		}
	}
	return lastErr
}

// serverOptions is pg_ctl's -o string (interpreted by /bin/sh).
func (c *Cluster) serverOptions(port int) string {
	sock := c.Dir
	if len(sock)+len("/.s.PGSQL.65535") > 107 { // sun_path limit: TCP only
		sock = ""
	}
	args := []string{"-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1",
		"-c", "unix_socket_directories=" + sock}
	for _, s := range c.cfg.settings {
		args = append(args, "-c", s[0]+"="+s[1])
	}
	return shellQuote(args...)
}

// waitReady polls pg_isready until the server accepts connections.
func (c *Cluster) waitReady(ctx context.Context) error {
	for {
		cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, "pg_isready"),
			"-q", "-h", "127.0.0.1", "-p", strconv.Itoa(c.Port), "-U", Superuser, "-d", "postgres", "-t", "2")
		err := cmd.Run()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pg_isready on port %d: %v (%w)", c.Port, err, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (c *Cluster) stop(ctx context.Context, mode string) error {
	if _, running := c.runningPort(); !running {
		return nil
	}
	out, err := c.run(ctx, "pg_ctl", "stop", "-D", c.DataDir(), "-m", mode, "-w", "-t", strconv.Itoa(c.waitSeconds(ctx)))
	if err != nil {
		if bytes.Contains(out, []byte("Is server running?")) {
			return nil
		}
		return fmt.Errorf("pglocal: pg_ctl stop -m %s %s: %w\n%s", mode, c.DataDir(), err, out)
	}
	return nil
}

// command is the argv running a PostgreSQL binary, as the postgres user
// when root.
func (c *Cluster) command(name string, args ...string) []string {
	argv := append([]string{filepath.Join(c.BinDir, name)}, args...)
	if c.asRoot {
		argv = append([]string{"runuser", "-u", osUser, "--"}, argv...)
	}
	return argv
}

func (c *Cluster) run(ctx context.Context, name string, args ...string) ([]byte, error) {
	argv := c.command(name, args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.Dir // a working directory the postgres user can enter
	cmd.Env = cleanEnv()
	cmd.WaitDelay = 5 * time.Second // pg_ctl's server keeps no pipes, but be safe
	return cmd.CombinedOutput()
}

// cleanEnv drops libpq/server variables that would redirect the binaries.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "PG_BIN=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C.UTF-8")
}

func (c *Cluster) waitSeconds(ctx context.Context) int {
	if dl, ok := ctx.Deadline(); ok {
		if s := int(time.Until(dl).Seconds()); s > 0 {
			return s
		}
		return 1
	}
	return int(c.cfg.timeout.Seconds())
}

// logTail returns the last lines the server logged after offset.
func (c *Cluster) logTail(offset int64) string {
	f, err := os.Open(c.LogFile())
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	const max = 8 << 10
	if size := fileSize(c.LogFile()); size-offset > max {
		offset = size - max
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return "(log: " + err.Error() + ")"
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// shellQuote joins args for /bin/sh, single-quoting each.
func shellQuote(args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
