package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPostgres checks that two calls give two distinct, usable databases.
func TestPostgres(t *testing.T) {
	a, b := Postgres(t), Postgres(t)
	if a == b {
		t.Fatalf("two calls returned the same database %s", a)
	}
	psql := clientBin("psql")
	if psql == "" {
		t.Skip("psql is not installed")
	}
	for _, dsn := range []string{a, b} {
		out, err := exec.Command(psql, "-X", "-A", "-t", "-d", dsn, "-c", "SELECT current_database()").CombinedOutput()
		if err != nil {
			t.Fatalf("psql %s: %v: %s", dsn, err, out)
		}
		if got := strings.TrimSpace(string(out)); !strings.HasSuffix(strings.SplitN(dsn, "?", 2)[0], "/"+got) {
			t.Errorf("connected to database %q through %s", got, dsn)
		}
	}
}
