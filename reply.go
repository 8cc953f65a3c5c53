package billing

import (
	"encoding/json"
	"net/http"
)

// errorReply is the body of every error reply.
type errorReply struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// setHeaders sets the headers every reply carries: the portal URL is a
// short-lived bearer credential, so nothing may cache the reply or leak it
// through a Referer.
func setHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
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
