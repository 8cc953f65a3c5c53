package billingtest

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects what a logger writes from many goroutines: a
// bytes.Buffer whose methods are safe for concurrent use, for example the
// writer of slog.NewJSONHandler in a test whose handlers run on a server's
// goroutines. The zero value is empty and ready to use.
type LogBuffer struct {
	// Lines, if not nil, receives every complete line written (without
	// its newline) as it is written, for a test that waits for a line; a
	// line is dropped when the channel is not ready. Set it before the
	// first write. Default: nil.
	Lines chan string

	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p. It never fails.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := b.buf.Len()
	b.buf.Write(p)
	if b.Lines != nil {
		// A line may have begun in an earlier write.
		pending := b.buf.Bytes()[bytes.LastIndexByte(b.buf.Bytes()[:start], '\n')+1:]
		lines := strings.SplitAfter(string(pending), "\n")
		for _, l := range lines[:len(lines)-1] {
			select {
			case b.Lines <- strings.TrimSuffix(l, "\n"):
			default:
			}
		}
	}
	return len(p), nil
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Reset forgets everything written so far.
func (b *LogBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}
