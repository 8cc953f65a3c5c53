package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/internal/testenv"
	"github.com/stripe/stripe-go/v76"
	"github.com/stripe/stripe-go/v76/billingportal/session"
	"github.com/stripe/stripe-go/v76/customer"
)

// runCmd runs the command line in-process and returns its exit status,
// stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &env{Stdout: &stdout, Stderr: &stderr, Getenv: func(string) string { return "" }})
	return code, stdout.String(), stderr.String()
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string // in stdout
	}{
		{[]string{"-h"}, []string{"Usage: billing SUBCOMMAND", "emulator", "billing SUBCOMMAND -h"}},
		{[]string{"help"}, []string{"Usage: billing SUBCOMMAND"}},
		{[]string{"--help"}, []string{"Usage: billing SUBCOMMAND"}},
		{[]string{"emulator", "-h"}, []string{"Usage: billing emulator [-addr HOST:PORT]", "-addr HOST:PORT", `(default "127.0.0.1:12111")`, "listening on http://HOST:PORT"}},
		{[]string{"emulator", "-help"}, []string{"Usage: billing emulator"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.args...)
			if code != 0 || stderr != "" {
				t.Errorf("exit %d, stderr %q; want 0 and nothing", code, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "no subcommand"},
		{[]string{"frobnicate"}, `unknown subcommand "frobnicate"`},
		{[]string{"-addr", "x"}, `unknown subcommand "-addr"`},
		{[]string{"emulator", "-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"emulator", "-addr"}, "flag needs an argument: -addr"},
		{[]string{"emulator", "extra"}, `unexpected argument "extra"`},
		{[]string{"emulator", "-portal-idle-timeout", "0s"}, "-portal-idle-timeout must be positive"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, stdout, stderr := runCmd(t, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2", code)
			}
			if stdout != "" {
				t.Errorf("stdout %q, want nothing", stdout)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, stderr)
			}
		})
	}
}

func TestEmulatorListenFails(t *testing.T) {
	code, _, stderr := runCmd(t, "emulator", "-addr", "256.0.0.1:1")
	if code != 1 || !strings.Contains(stderr, "listen on 256.0.0.1:1") {
		t.Errorf("exit %d, stderr %q; want 1 and the listen error", code, stderr)
	}
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the command once per test process (without -race: it is
// the program under test).
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "billing-cmd-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "billing")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = errors.New(string(out))
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v", buildErr)
	}
	return binPath
}

// TestMain runs the tests through testenv.Main, which stops the servers
// they started (the PostgreSQL cluster of testenv.Postgres), then removes
// the built binary.
func TestMain(m *testing.M) {
	testenv.Main(m, func() error {
		if binPath != "" {
			os.RemoveAll(filepath.Dir(binPath))
		}
		return nil
	})
}

// TestExitStatus checks the process's exit status, which run only returns.
func TestExitStatus(t *testing.T) {
	bin := binary(t)
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"-h"}, 0},
		{[]string{"emulator", "-h"}, 0},
		{nil, 2},
		{[]string{"nope"}, 2},
		{[]string{"emulator", "-nope"}, 2},
		{[]string{"emulator", "-addr", "256.0.0.1:1"}, 1},
	} {
		err := exec.Command(bin, tc.args...).Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Errorf("billing %s: exit %d, want %d", strings.Join(tc.args, " "), code, tc.want)
		}
	}
}

var listeningLine = regexp.MustCompile(`^listening on (http://127\.0\.0\.1:\d+)$`)

// startEmulator starts `billing emulator -addr 127.0.0.1:0` and returns the
// process and the URL its listening line names.
func startEmulator(t *testing.T) (*exec.Cmd, string, *billingtest.LogBuffer) {
	t.Helper()
	cmd := exec.Command(binary(t), "emulator", "-addr", "127.0.0.1:0")
	stderr := &billingtest.LogBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l, ok := <-lines:
		m := listeningLine.FindStringSubmatch(l)
		if !ok || m == nil {
			t.Fatalf("first line %q, want the listening line; stderr: %s", l, stderr)
		}
		go func() {
			for range lines { // drain
			}
		}()
		return cmd, m[1], stderr
	case <-time.After(20 * time.Second):
		t.Fatalf("no listening line within 20 s; stderr: %s", stderr)
	}
	return nil, "", nil
}

// TestEmulatorServes runs the binary, waits for its listening line, calls
// the emulator's API with stripe-go and stops it with each signal.
func TestEmulatorServes(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			cmd, url, stderr := startEmulator(t)
			b := stripe.GetBackendWithConfig(stripe.APIBackend, &stripe.BackendConfig{
				URL:               stripe.String(url),
				LeveledLogger:     &stripe.LeveledLogger{Level: stripe.LevelNull},
				MaxNetworkRetries: stripe.Int64(0),
			})
			customers := &customer.Client{B: b, Key: "sk_test_cmd"}
			c, err := customers.New(&stripe.CustomerParams{Email: stripe.String("ada@example.com")})
			if err != nil {
				t.Fatalf("create a customer: %v", err)
			}
			got, err := customers.Get(c.ID, nil)
			if err != nil || got.ID != c.ID || got.Email != "ada@example.com" {
				t.Fatalf("read the customer back: %+v, %v", got, err)
			}
			if _, err := customers.Get("cus_missing", nil); !isResourceMissing(err) {
				t.Errorf("unknown customer: %v, want resource_missing", err)
			}
			// A portal session opens the emulator's hosted page; the test
			// clock answers on its address.
			sess, err := (&session.Client{B: b, Key: "sk_test_cmd"}).New(&stripe.BillingPortalSessionParams{Customer: stripe.String(c.ID), ReturnURL: stripe.String("https://app.example.com/account")})
			if err != nil || !strings.HasPrefix(sess.URL, url+"/p/session/") {
				t.Errorf("portal session: %+v, %v; want a URL under %s/p/session/", sess, err, url)
			}
			resp, err := http.Post(url+"/emulator/clock/advance?by=1h", "", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("POST /emulator/clock/advance: %s, want 200", resp.Status)
			}

			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("after %v: %v; stderr: %s", sig, err, stderr)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("still running 10 s after %v", sig)
			}
			if _, err := customers.Get(c.ID, nil); err == nil {
				t.Error("the emulator still answers after it stopped")
			}
		})
	}
}

func isResourceMissing(err error) bool {
	var se *stripe.Error
	return errors.As(err, &se) && se.Code == stripe.ErrorCodeResourceMissing
}
