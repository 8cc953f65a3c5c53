package billing

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
)

// errorReply is the body of every error reply.
type errorReply struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// setHeaders sets the headers every reply carries: the portal URL is a
// short-lived bearer credential, so nothing may cache the reply or leak it
// through a Referer.
//
// It does what h.Set does for each (the keys are canonical) with one
// allocation instead of four: the values are cut from one array, as
// net/textproto cuts a request's header values, each slice's capacity its
// length so that an Add appends to a copy. The array is new for each reply,
// not shared: a middleware that edits a value in place (h[k][0] = v) must
// change this reply only, never turn no-store into a caching policy for
// every portal URL that follows.
func setHeaders(h http.Header) {
	v := &[4]string{"application/json", "no-store", "no-referrer", "nosniff"}
	h["Content-Type"] = v[0:1:1]
	h["Cache-Control"] = v[1:2:2]
	h["Referrer-Policy"] = v[2:3:3]
	h["X-Content-Type-Options"] = v[3:4:4]
}

// WriteError writes e as the contract's JSON error reply
// {"error": e.Code, "message": e.Message}, with the headers of every reply
// and, for 405, an Allow header: the one the handler set, else "POST". It
// never writes e's cause. It is the default of every endpoint's WriteError
// setting; a replacement gets the same *Error values.
func WriteError(w http.ResponseWriter, _ *http.Request, e *Error) {
	if e.Status == http.StatusMethodNotAllowed && w.Header().Get("Allow") == "" {
		w.Header().Set("Allow", http.MethodPost)
	}
	writeJSON(w, e.Status, errorReply{Error: e.Code, Message: e.Message})
}

// writeJSON writes v as the JSON body of a reply with the given status and
// the headers of every reply.
func writeJSON(w http.ResponseWriter, status int, v any) {
	setHeaders(w.Header())
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeSession writes the 200 reply of a created session: exactly what
// writeJSON(w, http.StatusOK, sessionReply{URL: url, Message:
// SuccessMessage}) writes, {"url":...,"message":...} and the newline of
// json.Encoder.Encode, in one Write. A URL that encoding/json writes as it
// is (printable ASCII but for '"', '\' and the HTML characters '<', '>'
// and '&' it escapes), as Stripe's portal URLs are, is copied into a pooled
// buffer without reflection or allocation; any other goes through
// encoding/json.
func writeSession(w http.ResponseWriter, url string) {
	if !jsonVerbatim(url) {
		writeJSON(w, http.StatusOK, sessionReply{URL: url, Message: SuccessMessage})
		return
	}
	setHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	bp := replyBufs.Get().(*[]byte)
	b := append((*bp)[:0], `{"url":"`...)
	b = append(b, url...)
	b = append(b, `","message":"`+SuccessMessage+`"}`+"\n"...)
	_, _ = w.Write(b) // an io.Writer does not keep b
	if cap(b) <= maxPooledReply {
		*bp = b
		replyBufs.Put(bp)
	}
}

// replyBufs holds the buffers of writeSession.
var replyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// maxPooledReply bounds the buffers kept in replyBufs.
const maxPooledReply = 4 << 10

// jsonVerbatim reports whether encoding/json, escaping HTML as
// json.Encoder does by default, writes s between its quotes unchanged.
// It answers false for some strings that encoding/json would also copy
// (DEL, valid UTF-8 beyond ASCII): those take the slow path, which is
// exact too.
func jsonVerbatim(s string) bool {
	for i := 0; i < len(s); i++ {
		if !jsonVerbatimByte[s[i]] {
			return false
		}
	}
	return true
}

// jsonVerbatimByte holds the bytes jsonVerbatim lets through: printable
// ASCII but for '"', '\' and the '<', '>' and '&' that json.Encoder
// escapes for HTML.
var jsonVerbatimByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = !strings.ContainsRune(`"\<>&`, rune(c))
	}
	return t
}()
