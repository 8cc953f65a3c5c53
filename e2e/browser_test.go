package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromiumEnv names a Chrome or Chromium binary to use instead of the one
// found on PATH.
const chromiumEnv = "BILLING_E2E_CHROMIUM"

// artifactsEnv names the folder for the screenshots instead of
// artifacts/ beside the tests.
const artifactsEnv = "BILLING_E2E_ARTIFACTS"

// stepTimeout bounds one step of a browser test.
const stepTimeout = 20 * time.Second

// chromium returns the browser binary, or skips t saying how to install
// one (fails it under CI=true).
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(chromiumEnv); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "e2e: no Chromium found: install it (Debian: apt-get install chromium; scripts/test does when it runs as root) or set " + chromiumEnv + " to a Chrome or Chromium binary"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg + " (CI=true: a missing browser is a failure)")
	}
	t.Skip(msg)
	return ""
}

// browser is one headless Chromium tab for a test. Its steps each save a
// screenshot; a failing step names it in the log.
type browser struct {
	t   *testing.T
	ctx context.Context // the tab
	dir string          // screenshots
	n   int             // steps so far
}

// shared is the one Chromium of the test process, started by the first
// test that needs it and stopped by TestMain; each test gets a tab in a
// browser context of its own (cookies and storage apart).
var shared struct {
	once    sync.Once
	ctx     context.Context // the first tab's; its browser lives as long
	stop    func()
	profile string // the fresh --user-data-dir
	started time.Duration
	err     error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.stop != nil {
		shared.stop()
	}
	if shared.profile != "" {
		os.RemoveAll(shared.profile)
	}
	os.Exit(code)
}

// startChromium starts headless Chromium bin with a fresh profile and
// offline-minded flags: chromedp's defaults (no first run, headless, no
// background networking, sync or extensions, ...) and what a machine
// without internet, a GPU or a sandbox needs, so that it waits for nothing.
func startChromium(bin string) {
	shared.profile, shared.err = os.MkdirTemp("", "e2e-chromium-")
	if shared.err != nil {
		return
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(shared.profile),
		chromedp.WindowSize(1000, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	shared.ctx, shared.stop = ctx, func() { cancelTab(); cancelAlloc() }
	// The first Run starts the browser; it must not run under a timeout,
	// whose end would close the browser.
	start := time.Now()
	if err := chromedp.Do(ctx); err != nil {
		shared.err = fmt.Errorf("e2e: starting %s: %w", bin, err)
	}
	shared.started = time.Since(start)
}

// newBrowser returns a tab of the shared Chromium, in a new browser
// context, closed when t ends. Screenshots go to artifacts/TEST/.
func newBrowser(t *testing.T) *browser {
	t.Helper()
	bin := chromium(t)
	first := false
	shared.once.Do(func() { first = true; startChromium(bin) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	if first {
		t.Logf("started %s in %v", bin, shared.started.Round(time.Millisecond))
	}
	dir := os.Getenv(artifactsEnv)
	if dir == "" {
		dir = "artifacts"
	}
	dir, err := filepath.Abs(filepath.Join(dir, strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := chromedp.NewContext(shared.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("e2e: opening a tab: %v", err)
	}
	t.Logf("screenshots in %s", dir)
	return &browser{t: t, ctx: ctx, dir: dir}
}

// step runs the actions of one step of the flow, then saves a screenshot
// named after it; a failure stops the test with the step's name, the
// screenshot's path, the page's URL and text.
func (b *browser) step(name string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.n++
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	err := chromedp.Do(ctx, actions...)
	cancel()
	shot := b.screenshot(name)
	if err != nil {
		b.fail(name, shot, err.Error())
	}
	b.t.Logf("step %d %s (%v)", b.n, name, time.Since(start).Round(time.Millisecond))
}

// load is a step of actions that load a page (a navigation, a click on a
// link or on a form's button) whose document, after any redirects, must
// answer status.
func (b *browser) load(name string, status int, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	b.n++
	start := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	resp, err := chromedp.RunResponse(ctx, actions...)
	cancel()
	shot := b.screenshot(name)
	switch {
	case err != nil:
		b.fail(name, shot, err.Error())
	case resp == nil:
		b.fail(name, shot, fmt.Sprintf("no document loaded, want one answering %d", status))
	case int(resp.Status) != status:
		b.fail(name, shot, fmt.Sprintf("the document answered %d, want %d", resp.Status, status))
	}
	b.t.Logf("step %d %s (%v)", b.n, name, time.Since(start).Round(time.Millisecond))
}

// navigate is a step that loads url; the document must answer status.
func (b *browser) navigate(name, url string, status int) {
	b.t.Helper()
	b.load(name, status, chromedp.Navigate(url))
}

// click is a step that clicks the element sel (a link, a form's button)
// and waits for the page it loads, which must answer status.
func (b *browser) click(name, sel string, status int) {
	b.t.Helper()
	b.load(name, status, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
}

func (b *browser) fail(name, shot, msg string) {
	b.t.Helper()
	url, text := b.page()
	b.t.Fatalf("step %d %q failed: %s\n  screenshot: %s\n  page: %s\n%s", b.n, name, msg, shot, url, indent(text))
}

// screenshot saves the whole page as NN-name.png and returns its path.
func (b *browser) screenshot(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	path := filepath.Join(b.dir, fmt.Sprintf("%02d-%s.png", b.n, slug(name)))
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: a PNG of the whole page
	if err == nil {
		err = os.WriteFile(path, png, 0o644)
	}
	if err != nil {
		return fmt.Sprintf("(none: %v)", err)
	}
	return path
}

// page returns the current URL and the body's text, for a failure message.
func (b *browser) page() (url, text string) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	url, _ = chromedp.Run(ctx, chromedp.Location())
	text, _ = chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	return url, text
}

// text returns the text of the element sel, which must be there.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		url, text := b.page()
		b.t.Fatalf("after step %d: reading %s: %v\n  page: %s\n%s", b.n, sel, err, url, indent(text))
	}
	return strings.TrimSpace(s)
}

// has reports whether the page has an element sel, without waiting.
func (b *browser) has(sel string) bool {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf("document.querySelector(%q) !== null", sel)))
	if err != nil {
		b.t.Fatalf("after step %d: looking for %s: %v", b.n, sel, err)
	}
	return n
}

// location returns the tab's current URL.
func (b *browser) location() string {
	url, _ := b.page()
	return url
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

func slug(s string) string {
	return strings.Trim(nonWord.ReplaceAllString(strings.ToLower(s), "-"), "-")
}

func indent(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = s[:2000] + " ..."
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
