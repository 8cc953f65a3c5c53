package billing

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// allowlist holds the parsed PortalConfig.AllowedReturnURLs.
type allowlist []allowEntry

type allowEntry struct {
	scheme string // "https" or "http"
	host   string // lower case, ASCII
	port   string // explicit, default filled in
	path   string // "" for an origin, else a prefix without trailing "/"
}

const maxURLLen = 2048

func parseAllowlist(entries []string) (allowlist, error) {
	var out allowlist
	for _, raw := range entries {
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		u, err := parseStrictURL(raw)
		if err != nil {
			return nil, fmt.Errorf("%q: %w (want an origin like https://app.example.com or a prefix like https://app.example.com/billing/)", raw, err)
		}
		if u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%q: an allowed return URL takes no query or fragment", raw)
		}
		out = append(out, allowEntry{
			scheme: u.Scheme,
			host:   strings.ToLower(u.Hostname()),
			port:   portOf(u),
			path:   strings.TrimRight(u.EscapedPath(), "/"),
		})
	}
	return out, nil
}

// match reports whether raw is an allowed return URL, and returns it as it
// should be sent to Stripe (unchanged: it was proven to be what it says).
func (a allowlist) match(raw string) (string, bool) {
	if len(a) == 0 {
		return "", false
	}
	u, err := parseStrictURL(raw)
	if err != nil {
		return "", false
	}
	host, port, path := strings.ToLower(u.Hostname()), portOf(u), u.EscapedPath()
	for _, e := range a {
		if e.scheme != u.Scheme || e.host != host || e.port != port {
			continue
		}
		if e.path == "" || path == e.path || strings.HasPrefix(path, e.path+"/") {
			return raw, true
		}
	}
	return "", false
}

// parseStrictURL parses an absolute http(s) URL and refuses every form that
// browsers and URL parsers read differently: control characters, spaces and
// backslashes anywhere, userinfo, a scheme not in lower case, an empty or
// non-ASCII host, and paths with dot segments, empty segments or encoded
// slashes, backslashes, dots or percent signs.
func parseStrictURL(raw string) (*url.URL, error) {
	if raw == "" || len(raw) > maxURLLen {
		return nil, errors.New("empty or too long")
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c <= ' ' || c == 0x7f || c == '\\' || c >= 0x80 {
			return nil, errors.New("has a space, a control character, a backslash or a non-ASCII byte")
		}
	}
	if !strings.HasPrefix(raw, "https://") && !strings.HasPrefix(raw, "http://") {
		return nil, errors.New("not an absolute http:// or https:// URL")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, errors.New("does not parse as a URL")
	}
	if u.User != nil || strings.Contains(u.Host, "@") {
		return nil, errors.New("has user info")
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return nil, errors.New("has no host")
	}
	if strings.Contains(u.Host, "%") {
		return nil, errors.New("host is percent-encoded")
	}
	h := u.Hostname()
	if strings.HasPrefix(h, ".") || strings.HasSuffix(h, ".") || strings.Contains(h, "..") {
		return nil, errors.New("host has empty labels")
	}
	if p := u.Port(); p != "" {
		if len(p) > 5 || strings.TrimLeft(p, "0123456789") != "" || p[0] == '0' {
			return nil, errors.New("bad port")
		}
	} else if strings.HasSuffix(u.Host, ":") {
		return nil, errors.New("empty port")
	}
	p := u.EscapedPath()
	lp := strings.ToLower(p)
	if strings.Contains(p, "//") || strings.Contains(lp, "%2f") || strings.Contains(lp, "%5c") || strings.Contains(lp, "%2e") || strings.Contains(lp, "%25") {
		return nil, errors.New("path has empty segments or encoded separators")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return nil, errors.New("path has dot segments")
		}
	}
	return u, nil
}

func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// checkAbsoluteURL checks PortalConfig.ReturnURL.
func checkAbsoluteURL(raw string) error {
	if _, err := parseStrictURL(raw); err != nil {
		return fmt.Errorf("%w (want an absolute URL like https://app.example.com/account)", err)
	}
	return nil
}

// locales are the locales Stripe's customer portal accepts
// (billing_portal.sessions.create, locale).
var locales = func() map[string]bool {
	m := map[string]bool{}
	for _, l := range strings.Fields(`auto bg cs da de el en en-AU en-CA en-GB en-IE en-IN en-NZ en-SG
		es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro ru sk sl sv
		th tr vi zh zh-HK zh-TW`) {
		m[l] = true
	}
	return m
}()

func validLocale(l string) bool { return locales[l] }
