package billingtest_test

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/contafy/billing/billingtest"
)

func TestLogBuffer(t *testing.T) {
	var b billingtest.LogBuffer
	log := slog.New(slog.NewTextHandler(&b, nil))
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				log.Info("line", "i", i, "j", j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "msg=line"); n != 160 {
		t.Errorf("%d lines, want 160", n)
	}
	b.Reset()
	if b.String() != "" {
		t.Errorf("after Reset: %q", b.String())
	}

	lines := make(chan string, 3)
	w := &billingtest.LogBuffer{Lines: lines}
	fmt.Fprint(w, "listening on ")
	fmt.Fprint(w, "http://127.0.0.1:1\nsecond\nthird (no newline yet)")
	fmt.Fprint(w, "\n")
	for _, want := range []string{"listening on http://127.0.0.1:1", "second", "third (no newline yet)"} {
		if got := <-lines; got != want {
			t.Errorf("line %q, want %q", got, want)
		}
	}
	// Nobody receives: the writes fill the channel, then drop lines
	// without blocking.
	fmt.Fprint(w, "x\ny\nz\nw\nv\n")
	if len(lines) != 3 {
		t.Errorf("%d lines queued, want 3 (the channel's capacity)", len(lines))
	}
}
