package billingtest

import (
	"html/template"
	"net/http"
	"net/url"
	"time"
)

// pagePrefix starts the path of a hosted portal page: /p/session/<token>.
const pagePrefix = "/p/session/"

type portalState struct {
	configs map[string]*portalConfig
	pages   map[string]*portalPage // by token
}

// portalPage is the hosted page's state of one portal session.
type portalPage struct {
	token, session, customer, config string
	returnURL, locale                string
	flow                             url.Values
	lastSeen                         time.Time // emulator clock
}

var pageFuncs = template.FuncMap{}

var notFoundPage = template.Must(template.New("404").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Not found</title></head>
<body><h1 id="not-found">Not found</h1><p>The emulator has no such page.</p></body></html>
`))

// writePage answers an HTML page.
func writePage(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(status)
	_ = t.Execute(w, data)
}

func (s *Stripe) pageRoutes(handle func(methods, path string, h http.HandlerFunc)) {}
