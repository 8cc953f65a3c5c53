package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progress writes the progress line of a long run to stderr: on a terminal
// one line rewritten in place (\r, at most every 100 ms), elsewhere (a log
// file, a CI job) a plain line every `every` updates, so that a log is not
// flooded with carriage returns.
type progress struct {
	w       io.Writer
	tty     bool
	every   int
	n       int
	shown   bool      // on a terminal: a line is on screen
	shownAt time.Time // when it was written
}

// newProgress returns the progress writer of w; every is how many updates
// one plain line stands for (at least 1).
func newProgress(w io.Writer, every int) *progress {
	return &progress{w: w, tty: isTerminal(w), every: max(every, 1)}
}

// update reports the run's state.
func (p *progress) update(line string) {
	p.n++
	if !p.tty {
		if p.n%p.every == 0 {
			fmt.Fprintln(p.w, line)
		}
		return
	}
	if now := time.Now(); !p.shown || now.Sub(p.shownAt) >= 100*time.Millisecond {
		fmt.Fprintf(p.w, "\r%s\x1b[K", line)
		p.shown, p.shownAt = true, now
	}
}

// finish ends the progress line: on a terminal it shows line, the final
// state, and moves to the next line; elsewhere it writes nothing (the
// report follows).
func (p *progress) finish(line string) {
	if p.tty && p.n > 0 {
		fmt.Fprintf(p.w, "\r%s\x1b[K\n", line)
		p.shown = false
	}
}

// isTerminal reports whether w is a character device (a terminal; also
// /dev/null, where the carriage returns do no harm).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
