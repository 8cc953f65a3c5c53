package e2e

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// client is a browser without JavaScript: net/http with a cookie jar that
// follows redirects as a browser does (a 303 becomes a GET), parses each
// page and remembers the hops of the last request.
type client struct {
	t    *testing.T
	http *http.Client
	rec  *recorder
}

// hop is one response of a request's redirect chain.
type hop struct {
	Status   int
	URL      string
	Location string
}

// recorder is a RoundTripper that records every response.
type recorder struct {
	mu   sync.Mutex
	hops []hop
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.hops = append(r.hops, hop{resp.StatusCode, req.URL.String(), resp.Header.Get("Location")})
		r.mu.Unlock()
	}
	return resp, err
}

func (r *recorder) take() []hop {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hops
	r.hops = nil
	return h
}

func newClient(t *testing.T) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	return &client{t: t, rec: rec, http: &http.Client{Jar: jar, Transport: rec}}
}

// page is a loaded HTML page.
type page struct {
	URL    *url.URL
	Status int
	Hops   []hop // the responses that led to it, the last one included
	Body   string
	doc    *html.Node
}

func (c *client) do(req *http.Request) *page {
	c.t.Helper()
	c.rec.take()
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	p := &page{URL: resp.Request.URL, Status: resp.StatusCode, Hops: c.rec.take(), Body: string(b)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.Body)); err != nil {
			c.t.Fatalf("%s %s: not HTML: %v", req.Method, req.URL, err)
		}
	}
	return p
}

// get loads u, following redirects.
func (c *client) get(u string) *page {
	c.t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		c.t.Fatal(err)
	}
	return c.do(req)
}

// submit sends the form as a browser does (same-origin), following
// redirects.
func (c *client) submit(f *form) *page {
	c.t.Helper()
	if f.method == http.MethodGet {
		u := *f.action
		u.RawQuery = f.values.Encode()
		return c.get(u.String())
	}
	req, err := http.NewRequest(http.MethodPost, f.action.String(), strings.NewReader(f.values.Encode()))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", f.action.Scheme+"://"+f.action.Host)
	return c.do(req)
}

// byID returns the element with the id, or nil.
func (p *page) byID(id string) *html.Node {
	return find(p.doc, func(n *html.Node) bool { return attr(n, "id") == id })
}

// text returns the text of the element with the id, trimmed; "" if there
// is none.
func (p *page) text(id string) string {
	n := p.byID(id)
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

// href returns the link target of the element with the id (an <a>, or the
// first <a> inside it), resolved against the page's URL; "" if none.
func (p *page) href(id string) string {
	n := p.byID(id)
	if n != nil && n.DataAtom != atom.A {
		n = find(n, func(n *html.Node) bool { return n.DataAtom == atom.A && attr(n, "href") != "" })
	}
	if n == nil {
		return ""
	}
	u, err := p.URL.Parse(attr(n, "href"))
	if err != nil {
		return ""
	}
	return u.String()
}

// links returns the targets of every link inside the element with the id.
func (p *page) links(id string) []string {
	var out []string
	n := p.byID(id)
	if n == nil {
		return nil
	}
	walkAll(n, func(n *html.Node) {
		if n.DataAtom == atom.A && attr(n, "href") != "" {
			if u, err := p.URL.Parse(attr(n, "href")); err == nil {
				out = append(out, u.String())
			}
		}
	})
	return out
}

// form is a form of a page, with the values a browser would send.
type form struct {
	action *url.URL
	method string
	values url.Values
	inputs map[string][]string // the values each named input offers (radio, hidden, ...)
}

// form returns the form with the id, or the first form inside the element
// with the id; nil if there is none.
func (p *page) form(id string) *form {
	n := p.byID(id)
	if n != nil && n.DataAtom != atom.Form {
		n = find(n, func(n *html.Node) bool { return n.DataAtom == atom.Form })
	}
	if n == nil {
		return nil
	}
	action, err := p.URL.Parse(attr(n, "action"))
	if err != nil {
		return nil
	}
	f := &form{action: action, method: strings.ToUpper(attr(n, "method")), values: url.Values{}, inputs: map[string][]string{}}
	if f.method == "" {
		f.method = http.MethodGet
	}
	walkAll(n, func(n *html.Node) {
		name := attr(n, "name")
		if name == "" {
			return
		}
		switch n.DataAtom {
		case atom.Input:
			typ := strings.ToLower(attr(n, "type"))
			v := attr(n, "value")
			if typ == "submit" || typ == "button" || typ == "image" || typ == "reset" {
				return
			}
			if typ == "checkbox" || typ == "radio" {
				if v == "" {
					v = "on"
				}
				f.inputs[name] = append(f.inputs[name], v)
				if hasAttr(n, "checked") {
					f.values.Set(name, v)
				}
				return
			}
			f.inputs[name] = append(f.inputs[name], v)
			f.values.Set(name, v)
		case atom.Select:
			walkAll(n, func(o *html.Node) {
				if o.DataAtom == atom.Option {
					v := attr(o, "value")
					f.inputs[name] = append(f.inputs[name], v)
					if hasAttr(o, "selected") || !f.values.Has(name) {
						f.values.Set(name, v)
					}
				}
			})
		case atom.Textarea:
			if n.FirstChild != nil {
				f.values.Set(name, n.FirstChild.Data)
			} else {
				f.values.Set(name, "")
			}
		}
	})
	return f
}

func find(n *html.Node, match func(*html.Node) bool) *html.Node {
	if n == nil {
		return nil
	}
	if n.Type == html.ElementNode && match(n) {
		return n
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if m := find(c, match); m != nil {
			return m
		}
	}
	return nil
}

func walkAll(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walkAll(c, f)
	}
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasAttr(n *html.Node, key string) bool {
	for _, a := range n.Attr {
		if a.Key == key {
			return true
		}
	}
	return false
}
