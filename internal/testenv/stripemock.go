// Package testenv starts the real servers the tests of this repository use
// (Stripe's stripe-mock, PostgreSQL), or finds them through environment
// variables. A test that cannot get a server skips with a message saying how
// to provide one; with CI=true in the environment it fails instead.
package testenv

import (
	"fmt"
	"github.com/stripe/stripe-go/v76"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StripeMockVersion is the pinned version of github.com/stripe/stripe-mock.
// scripts/test and .ci/run start the same version.
const StripeMockVersion = "v0.203.0"

var stripeMock struct {
	once   sync.Once
	url    string
	err    error
	cmd    *exec.Cmd
	exited chan struct{}
}

// StripeMock returns the base URL of a running stripe-mock: STRIPE_MOCK_URL
// if set, else one started for this test process with
// `go run github.com/stripe/stripe-mock@StripeMockVersion` on a free
// loopback port (the first run compiles it, which takes a while). Call
// [StopStripeMock] from TestMain to stop it.
func StripeMock(t testing.TB) string {
	t.Helper()
	stripeMock.once.Do(func() {
		if u := os.Getenv("STRIPE_MOCK_URL"); u != "" {
			stripeMock.url = strings.TrimRight(u, "/")
			stripeMock.err = waitHTTP(stripeMock.url, 10*time.Second, nil)
			return
		}
		stripeMock.url, stripeMock.cmd, stripeMock.err = startStripeMock()
	})
	if stripeMock.err != nil {
		unavailable(t, fmt.Sprintf("stripe-mock: %v; run `go run github.com/stripe/stripe-mock@%s -http-addr 127.0.0.1:12111 -https-addr 127.0.0.1:0` and set STRIPE_MOCK_URL=http://127.0.0.1:12111", stripeMock.err, StripeMockVersion))
	}
	return stripeMock.url
}

// StopStripeMock stops the stripe-mock that StripeMock started, if any.
func StopStripeMock() {
	if c := stripeMock.cmd; c != nil && c.Process != nil {
		_ = syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // go run and its child
		<-stripeMock.exited
	}
}

func startStripeMock() (string, *exec.Cmd, error) {
	if _, err := exec.LookPath("go"); err != nil {
		return "", nil, fmt.Errorf("no go command on PATH to run it")
	}
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command("go", "run", "github.com/stripe/stripe-mock@"+StripeMockVersion, "-http-addr", addr, "-https-addr", "127.0.0.1:0") // with only -http-addr, stripe-mock also binds HTTPS on :12112
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out := &tailBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	url := "http://" + addr
	if err := waitHTTP(url, 5*time.Minute, exited); err != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
		return "", nil, fmt.Errorf("%w; its output: %q", err, out.String())
	}
	stripeMock.exited = exited
	return url, cmd, nil
}

// waitHTTP waits until url answers any HTTP reply, or exited is closed.
func waitHTTP(url string, limit time.Duration, exited <-chan struct{}) error {
	c := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Get(url + "/v1/customers/cus_probe")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer from %s after %v: %v", url, limit, err)
		}
		select {
		case <-exited:
			return fmt.Errorf("it exited before answering")
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// freePort returns a TCP port free on 127.0.0.1 right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tailBuffer keeps the last 4 KiB written to it, for error messages.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 4096 {
		b.buf = b.buf[len(b.buf)-4096:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// StripeMockBackendConfig returns a stripe-go BackendConfig for the
// stripe-mock of [StripeMock], with an HTTP client whose idle connections
// are closed when t ends, so that goroutine-leak checks see none of them.
func StripeMockBackendConfig(t testing.TB) *stripe.BackendConfig {
	t.Helper()
	url := StripeMock(t)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	c := &http.Client{Timeout: 10 * time.Second, Transport: tr}
	t.Cleanup(tr.CloseIdleConnections)
	return &stripe.BackendConfig{URL: stripe.String(url), HTTPClient: c}
}
