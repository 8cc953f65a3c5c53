package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestProgress(t *testing.T) {
	t.Run("plain lines every N", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, 2)
		for _, l := range []string{"a", "b", "c", "d", "e"} {
			p.update(l)
		}
		p.finish("f")
		if got, want := b.String(), "b\nd\n"; got != want {
			t.Errorf("wrote %q, want %q", got, want)
		}
	})
	t.Run("terminal: rewritten in place", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, 10)
		p.tty = true
		p.update("a")
		p.update("b") // within 100 ms of a: not drawn
		p.finish("c")
		if got, want := b.String(), "\ra\x1b[K\rc\x1b[K\n"; got != want {
			t.Errorf("wrote %q, want %q", got, want)
		}
	})
	t.Run("terminal: nothing to finish", func(t *testing.T) {
		var b bytes.Buffer
		p := newProgress(&b, 1)
		p.tty = true
		p.finish("c")
		if b.Len() != 0 {
			t.Errorf("wrote %q for a run without updates", b.String())
		}
	})
}

func TestIsTerminal(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if isTerminal(f) || isTerminal(&bytes.Buffer{}) {
		t.Error("a file or a buffer counts as a terminal")
	}
}
