package billingtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/stripe/stripe-go/v76"
)

type apiError struct {
	Type    string `json:"type"`
	Code    string `json:"code,omitempty"`
	Param   string `json:"param,omitempty"`
	Message string `json:"message,omitempty"`
	DocURL  string `json:"doc_url,omitempty"`
}

func missingParam(param string) apiError {
	return apiError{Type: "invalid_request_error", Code: "parameter_missing", Param: param,
		Message: "Missing required param: " + param + "."}
}

func noSuch(param, kind, id string) apiError {
	return apiError{Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("No such %s: '%s'", kind, id)}
}

func writeError(w http.ResponseWriter, status int, e apiError) {
	if e.Code != "" {
		e.DocURL = "https://stripe.com/docs/error-codes/" + strings.ReplaceAll(e.Code, "_", "-")
	}
	writeJSON(w, status, map[string]any{"error": e})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		panic("billingtest: " + err.Error()) // only maps of plain values are encoded
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Stripe-Version", stripe.APIVersion)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (for Drop).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// flowJSON returns the session's "flow" object for the flow_data sent.
func flowJSON(flow url.Values) any {
	if flow == nil {
		return nil
	}
	typ := flow.Get("flow_data[type]")
	after := map[string]any{"type": orDefault(flow.Get("flow_data[after_completion][type]"), "portal_homepage"), "redirect": nil, "hosted_confirmation": nil}
	if u := flow.Get("flow_data[after_completion][redirect][return_url]"); u != "" {
		after["redirect"] = map[string]any{"return_url": u}
	}
	if after["type"] == "hosted_confirmation" {
		after["hosted_confirmation"] = map[string]any{"custom_message": orNil(flow.Get("flow_data[after_completion][hosted_confirmation][custom_message]"))}
	}
	out := map[string]any{"type": typ, "after_completion": after,
		"subscription_cancel": nil, "subscription_update": nil, "subscription_update_confirm": nil}
	if typ != "payment_method_update" {
		out[typ] = map[string]any{"subscription": flow.Get("flow_data[" + typ + "][subscription]")}
	}
	return out
}
