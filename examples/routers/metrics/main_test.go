package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/contafy/billing"
	"github.com/contafy/billing/billingtest"
	"github.com/contafy/billing/examples/routers/internal/demo"
	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	obs, err := newPromObserver(reg)
	if err != nil {
		t.Fatal(err)
	}
	app, err := demo.New(demo.Options{Observer: obs})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(routes(app, reg))
	defer srv.Close()

	// token -> requests sent with it ("" is no cookie).
	sends := []struct {
		token string
		n     int
	}{{"tok_pro", 3}, {"tok_basic", 1}, {"", 2}, {"tok_free", 1}}
	for _, s := range sends {
		for range s.n {
			req, err := http.NewRequest(http.MethodPost, srv.URL+demo.PortalPath, nil)
			if err != nil {
				t.Fatal(err)
			}
			if s.token != "" {
				req.AddCookie(&http.Cookie{Name: "access_token", Value: s.token})
			}
			res, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
		}
	}

	// One signed webhook event, and one with a bad signature.
	now := time.Now()
	event := billingtest.SubscriptionEvent("customer.subscription.updated", billingtest.SubscriptionSpec{
		ID: billingtest.SubscriptionBasic, Customer: billingtest.CustomerBasic, PriceID: billingtest.PricePro,
	}, now)
	for _, secret := range []string{demo.WebhookSecret, "whsec_wrong"} {
		req, err := http.NewRequest(http.MethodPost, srv.URL+demo.WebhookPath, bytes.NewReader(event))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Stripe-Signature", billingtest.Sign(event, secret, now))
		res, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}

	res, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: status %d", res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parsing /metrics: %v", err)
	}

	want := map[string]float64{
		"portal/created": 4, "portal/unauthorized": 2, "portal/not_paid": 1,
		"webhook/applied": 1, "webhook/rejected": 1,
	}
	if diff := cmp.Diff(want, byLabels(t, families["billing_requests_total"], func(m *dto.Metric) float64 {
		return m.GetCounter().GetValue()
	})); diff != "" {
		t.Errorf("billing_requests_total (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, byLabels(t, families["billing_request_duration_seconds"], func(m *dto.Metric) float64 {
		return float64(m.GetHistogram().GetSampleCount())
	})); diff != "" {
		t.Errorf("billing_request_duration_seconds sample counts (-want +got):\n%s", diff)
	}
}

// byLabels returns value(m) of each metric of f by "op/outcome".
func byLabels(t *testing.T, f *dto.MetricFamily, value func(*dto.Metric) float64) map[string]float64 {
	t.Helper()
	if f == nil {
		t.Fatal("metric family missing from /metrics")
	}
	out := map[string]float64{}
	for _, m := range f.GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		out[l["op"]+"/"+l["outcome"]] = value(m)
	}
	return out
}

// BenchmarkObserve measures what the observer adds to each request, run in
// parallel as requests are.
func BenchmarkObserve(b *testing.B) {
	obs, err := newPromObserver(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	o := billing.Observation{Op: billing.OpPortal, Outcome: billing.Created, Status: 200, Latency: 42 * time.Millisecond, UserID: "u_pro"}
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			obs.Observe(ctx, o)
		}
	})
}
