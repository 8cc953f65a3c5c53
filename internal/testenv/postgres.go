package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// PostgresURLEnv names the environment variable that points the tests at an
// existing PostgreSQL server instead of a throwaway cluster: a URL such as
// postgres://user:password@host:5432/postgres?sslmode=disable whose user may
// create databases. [Postgres] creates a fresh database on it per call (with
// the createdb client program) and drops it when the test ends.
const PostgresURLEnv = "BILLING_TEST_POSTGRES_URL"

const postgresHelp = "install PostgreSQL (Debian: apt-get install postgresql; initdb, postgres and createdb must be in PATH or /usr/lib/postgresql/*/bin) " +
	"or set " + PostgresURLEnv + " to a server's URL (postgres://user:pass@host:5432/postgres)"

// Postgres returns the URL of a fresh, empty PostgreSQL database for t, for
// example postgres://postgres@127.0.0.1:40123/test_3?sslmode=disable.
//
// With [PostgresURLEnv] set it creates the database on that server and drops
// it when t ends. Otherwise the first call of the test process starts one
// throwaway cluster of the installed PostgreSQL (initdb, then postgres, in a
// temp dir, as the postgres user when the process runs as root since initdb
// refuses root, on a free 127.0.0.1 port, trust authentication, fsync off),
// and each call creates a new database in it. [Main] stops the cluster and
// removes its directory when the tests end. When PostgreSQL is not installed
// the test is skipped with a message saying how to provide it, or failed
// under CI=true.
func Postgres(t testing.TB) string {
	t.Helper()
	if base := os.Getenv(PostgresURLEnv); base != "" {
		return externalDatabase(t, base)
	}
	requireMain(t)
	pgOnce.Do(func() { pg = startCluster() })
	if pg.unavailable != "" {
		unavailable(t, pg.unavailable+": "+postgresHelp)
		return ""
	}
	if pg.err != nil {
		t.Fatalf("testenv: starting a throwaway PostgreSQL cluster: %v", pg.err)
	}
	name := fmt.Sprintf("test_%d", dbSeq.Add(1))
	out, err := exec.Command(pg.bin("createdb"), "-h", "127.0.0.1", "-p", strconv.Itoa(pg.port), "-U", "postgres", name).CombinedOutput()
	if err != nil {
		t.Fatalf("testenv: createdb %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.port, name)
}

var (
	pgOnce sync.Once
	pg     *cluster
	dbSeq  atomic.Int64
)

// cluster is the throwaway PostgreSQL cluster of the test process.
type cluster struct {
	binDir      string
	dir         string // temp dir: data/, the socket and the log
	port        int
	cmd         *exec.Cmd
	exited      chan struct{}
	unavailable string // why PostgreSQL cannot be started here (a skip)
	err         error  // a failure to start an installed PostgreSQL
}

func (c *cluster) bin(name string) string { return filepath.Join(c.binDir, name) }

// findPostgresBin returns the directory holding initdb and postgres, or "".
func findPostgresBin() string {
	has := func(dir string) bool {
		for _, n := range []string{"initdb", "postgres", "createdb"} {
			if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
				return false
			}
		}
		return true
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil && has(filepath.Dir(r)) {
			return filepath.Dir(r)
		}
		if has(filepath.Dir(p)) {
			return filepath.Dir(p)
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	return ""
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// startCluster runs initdb and starts postgres. It never returns nil.
func startCluster() *cluster {
	c := &cluster{binDir: findPostgresBin()}
	if c.binDir == "" {
		c.unavailable = "PostgreSQL is not installed (no initdb found)"
		return c
	}
	var cred *runAs
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			c.unavailable = "running as root, and initdb refuses root, but there is no postgres user to run it as"
			return c
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &runAs{uid: uid, gid: gid}
	}
	sweepStale()
	dir, err := os.MkdirTemp("", "billing-pg-")
	if err != nil {
		c.err = err
		return c
	}
	c.dir = dir
	atExit(c.stop)
	if cred != nil {
		if err := os.Chown(dir, cred.uid, cred.gid); err != nil {
			c.err = fmt.Errorf("chown %s to postgres: %w", dir, err)
			return c
		}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(c.bin("initdb"), "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Dir = dir
	initdb.SysProcAttr = sysProcAttr(cred, false)
	if out, err := initdb.CombinedOutput(); err != nil {
		c.err = fmt.Errorf("initdb: %v: %s", err, lastLines(out, 10))
		return c
	}
	// A free port can be taken between the probe and postgres's bind:
	// try a few.
	for attempt := 0; attempt < 3; attempt++ {
		if c.err = c.startPostgres(data, cred); c.err == nil {
			return c
		}
	}
	return c
}

// sweepStale removes the directories of clusters whose test process was
// killed before Main could stop them (the server itself then stops, see
// sysProcAttr): no postmaster.pid, untouched for 10 minutes.
func sweepStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "billing-pg-*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < 10*time.Minute {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "data", "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
			_ = os.RemoveAll(d)
		}
	}
}

func (c *cluster) startPostgres(data string, cred *runAs) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(c.dir, fmt.Sprintf("postgres-%d.log", port))
	logf, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(c.bin("postgres"), "-D", data,
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-k", c.dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=64MB")
	cmd.Dir = c.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr(cred, true)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ready(filepath.Join(data, "postmaster.pid")) {
			c.port, c.cmd, c.exited = port, cmd, exited
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres exited at start: %s", lastLines(log, 10))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("postgres not ready after 60s: %s", lastLines(log, 10))
		}
	}
}

// ready reports whether the postmaster.pid file says the server accepts
// connections (its 8th line is "ready", PostgreSQL 10 and later).
func ready(pidFile string) bool {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	return len(lines) >= 8 && strings.TrimSpace(lines[7]) == "ready"
}

// stop shuts the cluster down (fast shutdown, then kill) and removes its
// directory.
func (c *cluster) stop() {
	if c.cmd != nil {
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.exited
		}
	}
	if c.dir != "" {
		_ = os.RemoveAll(c.dir)
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// externalDatabase creates a fresh database on the server of base (the
// value of PostgresURLEnv) and drops it when t ends.
func externalDatabase(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("testenv: %s must be a postgres:// URL", PostgresURLEnv)
	}
	createdb, dropdb := clientBin("createdb"), clientBin("dropdb")
	if createdb == "" || dropdb == "" {
		unavailable(t, PostgresURLEnv+" is set but the PostgreSQL client programs createdb and dropdb are not installed (Debian: apt-get install postgresql-client)")
		return ""
	}
	name := fmt.Sprintf("billing_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	if out, err := exec.Command(createdb, "--maintenance-db="+base, name).CombinedOutput(); err != nil {
		// The output names the server, never the password.
		t.Fatalf("testenv: createdb %s on the server of %s: %v: %s", name, PostgresURLEnv, err, redact(out, u))
	}
	t.Cleanup(func() {
		if out, err := exec.Command(dropdb, "--force", "--if-exists", "--maintenance-db="+base, name).CombinedOutput(); err != nil {
			t.Logf("testenv: dropdb %s: %v: %s", name, err, redact(out, u))
		}
	})
	d := *u
	d.Path = "/" + name
	return d.String()
}

// clientBin finds a PostgreSQL client program, or returns "".
func clientBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	if dir := findPostgresBin(); dir != "" {
		return filepath.Join(dir, name)
	}
	return ""
}

// redact removes the password of u from out.
func redact(out []byte, u *url.URL) string {
	s := string(bytes.TrimSpace(out))
	if p, ok := u.User.Password(); ok && p != "" {
		s = strings.ReplaceAll(s, p, "xxxxx")
	}
	return s
}
