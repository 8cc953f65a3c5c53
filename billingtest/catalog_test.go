package billingtest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// raw sends form to the emulator as curl would (form-encoded, with the
// test key) and returns the status and the decoded JSON body.
func raw(t *testing.T, s *billingtest.Stripe, method, path string, form url.Values) (int, map[string]any) {
	t.Helper()
	var body io.Reader
	target := s.URL() + path
	if method == http.MethodGet {
		if len(form) > 0 {
			target += "?" + form.Encode()
		}
	} else {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+billingtest.TestKey)
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s %s: body %q is not JSON: %v", method, path, b, err)
	}
	return resp.StatusCode, m
}

// errorOf returns the param and message of a Stripe error body.
func errorOf(m map[string]any) (param, message string) {
	e, _ := m["error"].(map[string]any)
	param, _ = e["param"].(string)
	message, _ = e["message"].(string)
	return param, message
}

func TestCatalog(t *testing.T) {
	s := billingtest.StartStripe(t)
	api := s.API()

	p, err := api.Products.New(&stripe.ProductParams{ID: stripe.String("prod_team"), Name: stripe.String("Team"),
		Metadata: map[string]string{"plan": "PRO"}})
	if err != nil {
		t.Fatalf("Products.New: %v", err)
	}
	if p.ID != "prod_team" || p.Name != "Team" || !p.Active || p.Metadata["plan"] != "PRO" {
		t.Errorf("product = %+v", p)
	}
	gen, err := api.Products.New(&stripe.ProductParams{Name: stripe.String("Generated")})
	if err != nil || !strings.HasPrefix(gen.ID, "prod_") {
		t.Fatalf("Products.New without id = %+v, %v", gen, err)
	}
	if _, err := api.Products.Update(gen.ID, &stripe.ProductParams{Active: stripe.Bool(false)}); err != nil {
		t.Fatal(err)
	}

	monthly, err := api.Prices.New(&stripe.PriceParams{Product: stripe.String("prod_team"), Currency: stripe.String("eur"),
		UnitAmount: stripe.Int64(4900), LookupKey: stripe.String("team_monthly"),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatalf("Prices.New: %v", err)
	}
	yearly, err := api.Prices.New(&stripe.PriceParams{Product: stripe.String("prod_team"), Currency: stripe.String("eur"),
		UnitAmount: stripe.Int64(49000), LookupKey: stripe.String("team_yearly"),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("year"), IntervalCount: stripe.Int64(1)}})
	if err != nil {
		t.Fatal(err)
	}
	once, err := api.Prices.New(&stripe.PriceParams{Product: stripe.String("prod_team"), Currency: stripe.String("eur"), UnitAmount: stripe.Int64(100)})
	if err != nil {
		t.Fatal(err)
	}
	got, err := api.Prices.Get(monthly.ID, &stripe.PriceParams{Expand: []*string{stripe.String("product")}})
	if err != nil {
		t.Fatal(err)
	}
	if got.LookupKey != "team_monthly" || got.UnitAmount != 4900 || got.Currency != "eur" || got.Type != "recurring" ||
		got.Recurring == nil || got.Recurring.Interval != "month" || got.Recurring.IntervalCount != 1 || got.Product.Name != "Team" {
		t.Errorf("price = %+v (recurring %+v, product %+v)", got, got.Recurring, got.Product)
	}
	if once.Type != "one_time" || once.Recurring != nil {
		t.Errorf("one-time price = %+v", once)
	}

	listPrices := func(p *stripe.PriceListParams) []string {
		var ids []string
		it := api.Prices.List(p)
		for it.Next() {
			ids = append(ids, it.Price().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	listProducts := func(p *stripe.ProductListParams) []string {
		var ids []string
		it := api.Products.List(p)
		for it.Next() {
			ids = append(ids, it.Product().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	tests := []struct {
		name string
		got  []string
		want []string
	}{
		{"prices by lookup keys", listPrices(&stripe.PriceListParams{LookupKeys: stripe.StringSlice([]string{"team_yearly", "team_monthly", "nope"})}),
			[]string{yearly.ID, monthly.ID}},
		{"recurring prices, newest first", listPrices(&stripe.PriceListParams{Type: stripe.String("recurring")}), []string{yearly.ID, monthly.ID}},
		{"all prices of the product", listPrices(&stripe.PriceListParams{Product: stripe.String("prod_team")}), []string{once.ID, yearly.ID, monthly.ID}},
		{"active products", listProducts(&stripe.ProductListParams{Active: stripe.Bool(true)}), []string{"prod_team"}},
		{"every product", listProducts(nil), []string{gen.ID, "prod_team"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}

	// A lookup key moves only with transfer_lookup_key.
	if _, err := api.Prices.New(&stripe.PriceParams{Product: stripe.String("prod_team"), Currency: stripe.String("eur"),
		UnitAmount: stripe.Int64(5900), LookupKey: stripe.String("team_monthly"), Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}}); !isCode(err, 400, "") {
		t.Errorf("duplicate lookup key: %v, want 400", err)
	}
	moved, err := api.Prices.New(&stripe.PriceParams{Product: stripe.String("prod_team"), Currency: stripe.String("eur"),
		UnitAmount: stripe.Int64(5900), LookupKey: stripe.String("team_monthly"), TransferLookupKey: stripe.Bool(true),
		Recurring: &stripe.PriceRecurringParams{Interval: stripe.String("month")}})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{moved.ID}, listPrices(&stripe.PriceListParams{LookupKeys: stripe.StringSlice([]string{"team_monthly"})})); diff != "" {
		t.Errorf("after the transfer (-want +got):\n%s", diff)
	}
	if old, _ := s.Price(monthly.ID); old.LookupKey != "" {
		t.Errorf("the old price kept its lookup key %q", old.LookupKey)
	}
	if n := len(s.Events("price.created")); n != 4 {
		t.Errorf("%d price.created events, want 4", n)
	}
	if ev := s.Events("price.updated"); len(ev) != 1 || !strings.Contains(string(ev[0].JSON), `"previous_attributes":{"lookup_key":"team_monthly"}`) {
		t.Errorf("price.updated events = %s", eventsJSON(ev))
	}
}

func eventsJSON(evs []billingtest.EmittedEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.Write(e.JSON)
		b.WriteByte('\n')
	}
	return b.String()
}

// TestBadParams sends malformed and missing parameters as curl would: each
// is Stripe's 400 (or 404) naming the parameter, and changes nothing.
func TestBadParams(t *testing.T) {
	s := billingtest.StartStripe(t)
	s.Seed()
	v := func(kv ...string) url.Values {
		out := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			out.Add(kv[i], kv[i+1])
		}
		return out
	}
	tests := []struct {
		name, method, path string
		form               url.Values
		wantStatus         int
		wantParam          string
	}{
		{"product without name", "POST", "/v1/products", v(), 400, "name"},
		{"product active not a bool", "POST", "/v1/products", v("name", "x", "active", "yes"), 400, "active"},
		{"price without currency", "POST", "/v1/prices", v("product", billingtest.ProductPro, "unit_amount", "1"), 400, "currency"},
		{"price amount not a number", "POST", "/v1/prices", v("product", billingtest.ProductPro, "currency", "usd", "unit_amount", "ten"), 400, "unit_amount"},
		{"price negative amount", "POST", "/v1/prices", v("product", billingtest.ProductPro, "currency", "usd", "unit_amount", "-1"), 400, "unit_amount"},
		{"price bad interval", "POST", "/v1/prices", v("product", billingtest.ProductPro, "currency", "usd", "unit_amount", "1", "recurring[interval]", "fortnight"), 400, "recurring[interval]"},
		{"price of unknown product", "POST", "/v1/prices", v("product", "prod_nope", "currency", "usd", "unit_amount", "1"), 404, "product"},
		{"list limit too big", "GET", "/v1/prices", v("limit", "1000"), 400, "limit"},
		{"list limit not a number", "GET", "/v1/events", v("limit", "many"), 400, "limit"},
		{"list after unknown id", "GET", "/v1/subscriptions", v("starting_after", "sub_nope"), 404, "starting_after"},
		{"subscription without items", "POST", "/v1/subscriptions", v("customer", billingtest.CustomerPro), 400, "items"},
		{"subscription of unknown price", "POST", "/v1/subscriptions", v("customer", billingtest.CustomerPro, "items[0][price]", "price_nope"), 404, "items[0][price]"},
		{"subscription of unknown customer", "POST", "/v1/subscriptions", v("customer", "cus_nope", "items[0][price]", billingtest.PricePro), 404, "customer"},
		{"subscription quantity zero", "POST", "/v1/subscriptions", v("customer", billingtest.CustomerPro, "items[0][price]", billingtest.PricePro, "items[0][quantity]", "0"), 400, "items[0][quantity]"},
		{"subscription trial days not a number", "POST", "/v1/subscriptions", v("customer", billingtest.CustomerPro, "items[0][price]", billingtest.PricePro, "trial_period_days", "a week"), 400, "trial_period_days"},
		{"subscription trial end in the past", "POST", "/v1/subscriptions", v("customer", billingtest.CustomerPro, "items[0][price]", billingtest.PricePro, "trial_end", "1000"), 400, "trial_end"},
		{"subscription with two items", "POST", "/v1/subscriptions", v("customer", billingtest.CustomerPro, "items[0][price]", billingtest.PricePro, "items[1][price]", billingtest.PriceBasic), 400, "items"},
		{"update with a bad bool", "POST", "/v1/subscriptions/" + billingtest.SubscriptionPro, v("cancel_at_period_end", "maybe"), 400, "cancel_at_period_end"},
		{"update another item", "POST", "/v1/subscriptions/" + billingtest.SubscriptionPro, v("items[0][id]", "si_other", "items[0][price]", billingtest.PriceBasic), 400, "items[0][id]"},
		{"update bad proration", "POST", "/v1/subscriptions/" + billingtest.SubscriptionPro, v("proration_behavior", "sometimes"), 400, "proration_behavior"},
		{"attach unknown card", "POST", "/v1/payment_methods/pm_card_diners/attach", v("customer", billingtest.CustomerPro), 404, "payment_method"},
		{"payment method of unknown token", "POST", "/v1/payment_methods", v("type", "card", "card[token]", "tok_forged"), 400, "card[token]"},
		{"default payment method not attached", "POST", "/v1/customers/" + billingtest.CustomerPro, v("invoice_settings[default_payment_method]", "pm_nope"), 404, "invoice_settings[default_payment_method]"},
		{"webhook endpoint without url", "POST", "/v1/webhook_endpoints", v("enabled_events[0]", "*"), 400, "url"},
		{"webhook endpoint without events", "POST", "/v1/webhook_endpoints", v("url", "https://app.example.com/hook"), 400, "enabled_events"},
		{"webhook endpoint bad event", "POST", "/v1/webhook_endpoints", v("url", "https://app.example.com/hook", "enabled_events[0]", "everything"), 400, "enabled_events"},
		{"webhook endpoint bad api version", "POST", "/v1/webhook_endpoints", v("url", "https://app.example.com/hook", "enabled_events[0]", "*", "api_version", "latest"), 400, "api_version"},
		{"portal configuration bad mode", "POST", "/v1/billing_portal/configurations", v("features[subscription_cancel][mode]", "later"), 400, "features[subscription_cancel][mode]"},
		{"portal configuration unknown price", "POST", "/v1/billing_portal/configurations", v("features[subscription_update][products][0][product]", billingtest.ProductPro, "features[subscription_update][products][0][prices][0]", "price_nope"), 404, "features[subscription_update][products][0][prices][0]"},
		{"portal configuration price of another product", "POST", "/v1/billing_portal/configurations", v("features[subscription_update][products][0][product]", billingtest.ProductPro, "features[subscription_update][products][0][prices][0]", billingtest.PriceBasic), 400, "features[subscription_update][products][0][prices][0]"},
		{"events type and types", "GET", "/v1/events", v("type", "invoice.paid", "types[0]", "invoice.created"), 400, "types"},
		{"events created not a number", "GET", "/v1/events", v("created[gte]", "yesterday"), 400, "created[gte]"},
		{"active entitlements without customer", "GET", "/v1/entitlements/active_entitlements", v(), 400, "customer"},
		{"feature without lookup key", "POST", "/v1/entitlements/features", v("name", "Export"), 400, "lookup_key"},
		{"flow redirect without url", "POST", "/v1/billing_portal/sessions", v("customer", billingtest.CustomerPro, "return_url", billingtest.ReturnURL,
			"flow_data[type]", "payment_method_update", "flow_data[after_completion][type]", "redirect"), 400, "flow_data[after_completion][redirect][return_url]"},
		{"flow redirect to a script", "POST", "/v1/billing_portal/sessions", v("customer", billingtest.CustomerPro, "return_url", billingtest.ReturnURL,
			"flow_data[type]", "payment_method_update", "flow_data[after_completion][type]", "redirect",
			"flow_data[after_completion][redirect][return_url]", "javascript:alert(1)"), 400, "flow_data[after_completion][redirect][return_url]"},
		{"flow bad completion", "POST", "/v1/billing_portal/sessions", v("customer", billingtest.CustomerPro, "return_url", billingtest.ReturnURL,
			"flow_data[type]", "payment_method_update", "flow_data[after_completion][type]", "confetti"), 400, "flow_data[after_completion][type]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(s.Events())
			status, body := raw(t, s, tt.method, tt.path, tt.form)
			param, msg := errorOf(body)
			if status != tt.wantStatus || param != tt.wantParam || msg == "" {
				t.Errorf("status %d param %q message %q, want %d %q and a message (body %v)", status, param, msg, tt.wantStatus, tt.wantParam, body)
			}
			if n := len(s.Events()); n != before {
				t.Errorf("a rejected request emitted %d events", n-before)
			}
		})
	}
}
