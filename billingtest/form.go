package billingtest

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// form reads the parameters of one request the way Stripe does: nested
// keys (a[b][c]), lists as a[0], a[1] or a[], booleans "true"/"false",
// integers in decimal. Every reader records the first malformed value, so
// that a handler parses everything it needs and then answers one
// Stripe-shaped 400 naming the parameter (see [form.err]).
type form struct {
	v   url.Values
	bad *apiError
}

func newForm(r *http.Request) *form { return &form{v: r.Form} }

// has reports whether key was sent, even empty.
func (f *form) has(key string) bool { _, ok := f.v[key]; return ok }

// str returns key's value ("" when absent).
func (f *form) str(key string) string { return f.v.Get(key) }

// opt returns key's value and whether it was sent.
func (f *form) opt(key string) (string, bool) {
	v, ok := f.v[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func (f *form) fail(e apiError) {
	if f.bad == nil {
		f.bad = &e
	}
}

// invalid records a 400 parameter_invalid_... for key.
func (f *form) invalid(key, code, msg string) {
	f.fail(apiError{Type: "invalid_request_error", Code: code, Param: key, Message: msg})
}

// require records parameter_missing unless key was sent non-empty, and
// returns its value.
func (f *form) require(key string) string {
	v := f.str(key)
	if v == "" {
		f.fail(missingParam(key))
	}
	return v
}

// boolean returns key's value as a bool, and whether it was sent.
func (f *form) boolean(key string) (val, ok bool) {
	s, ok := f.opt(key)
	if !ok {
		return false, false
	}
	switch s {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	f.invalid(key, "parameter_invalid_boolean", fmt.Sprintf("Invalid boolean: %s. Send true or false.", s))
	return false, false
}

// integer returns key's value as an int64, and whether it was sent.
func (f *form) integer(key string) (int64, bool) {
	s, ok := f.opt(key)
	if !ok || s == "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		f.invalid(key, "parameter_invalid_integer", fmt.Sprintf("Invalid integer: %s", s))
		return 0, false
	}
	return n, true
}

// positive is [form.integer] for a value that must be at least min.
func (f *form) atLeast(key string, min int64) (int64, bool) {
	n, ok := f.integer(key)
	if ok && n < min {
		f.invalid(key, "parameter_invalid_integer", fmt.Sprintf("Invalid %s: must be at least %d.", key, min))
		return 0, false
	}
	return n, ok
}

// unix returns key's value as a Unix time in seconds, and whether it was
// sent.
func (f *form) unix(key string) (time.Time, bool) {
	n, ok := f.integer(key)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(n, 0), true
}

// oneOf returns key's value if it is one of allowed (or absent: def).
func (f *form) oneOf(key, def string, allowed ...string) string {
	s, ok := f.opt(key)
	if !ok || s == "" {
		return def
	}
	if !slices.Contains(allowed, s) {
		f.invalid(key, "parameter_invalid_string", fmt.Sprintf("Invalid %s: %q. Use one of: %s.", key, s, strings.Join(allowed, ", ")))
		return def
	}
	return s
}

// list returns the values of the list key: key[0], key[1], ... (in index
// order), key[] or key itself, as stripe-go, curl and Stripe's other
// clients send lists. ok is false when none was sent. A list sent as the
// single empty value key="" (Stripe's way to empty a list) is an empty,
// sent list.
func (f *form) list(key string) (vals []string, ok bool) {
	if v, found := f.v[key]; found {
		for _, s := range v {
			if s != "" {
				vals = append(vals, s)
			}
		}
		ok = true
	}
	if v, found := f.v[key+"[]"]; found {
		vals, ok = append(vals, v...), true
	}
	for _, i := range f.indices(key) {
		if v, found := f.v[fmt.Sprintf("%s[%d]", key, i)]; found {
			vals, ok = append(vals, v...), true
		}
	}
	return vals, ok
}

// indices returns the distinct list indices N of keys that start with
// key[N], in order: the elements of a list of objects (items[0][price],
// items[1][price], ...).
func (f *form) indices(key string) []int {
	var out []int
	prefix := key + "["
	for k := range f.v {
		rest, ok := strings.CutPrefix(k, prefix)
		if !ok {
			continue
		}
		end := strings.IndexByte(rest, ']')
		if end <= 0 {
			continue
		}
		n, err := strconv.Atoi(rest[:end])
		if err != nil || n < 0 {
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// metadata applies key[k]=v pairs to m (an empty value deletes k; key=""
// empties m) and returns m, as Stripe updates metadata.
func (f *form) metadata(key string, m map[string]string) map[string]string {
	if v, ok := f.v[key]; ok && len(v) > 0 && v[0] == "" {
		m = nil
	}
	prefix := key + "["
	for k, v := range f.v {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || !strings.HasSuffix(name, "]") || len(v) == 0 {
			continue
		}
		name = strings.TrimSuffix(name, "]")
		if m == nil {
			m = map[string]string{}
		}
		if v[0] == "" {
			delete(m, name)
		} else {
			m[name] = v[0]
		}
	}
	return m
}

// expand returns the expand[] paths.
func (f *form) expand() []string {
	v, _ := f.list("expand")
	return v
}

// err returns the first malformed parameter as Stripe's 400, or nil.
func (f *form) err() *apiError { return f.bad }

// answerBad writes f's error and reports whether there was one.
func (f *form) answerBad(w http.ResponseWriter) bool {
	if f.bad == nil {
		return false
	}
	writeError(w, http.StatusBadRequest, *f.bad)
	return true
}
