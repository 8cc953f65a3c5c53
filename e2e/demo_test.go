package e2e

import (
	"context"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/demo/app"
)

// startDemo runs the demo in-process with no Stripe configured (so with
// the test kit's emulator, in-process too) on a free port; it stops when t
// ends, and its output is logged if t failed.
func startDemo(t *testing.T, args ...string) *app.Demo {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &billingtest.LogBuffer{}
	d, err := app.Start(ctx, append([]string{"-addr", "127.0.0.1:0"}, args...), func(string) string { return "" }, out)
	if err != nil {
		cancel()
		t.Fatalf("demo: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		cancel()
		if err := d.Wait(); err != nil {
			t.Errorf("demo stopped with %v", err)
		}
		if t.Failed() {
			t.Logf("demo output:\n%s", out)
		}
	})
	return d
}
