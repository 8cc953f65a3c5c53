package billing_test

import (
	"strings"
	"testing"

	"github.com/contafy/billing"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

func TestParsePriceTable(t *testing.T) {
	tests := []struct {
		in   string
		want billing.PriceTable
		err  string
	}{
		{in: "price_basic=BASIC,price_pro=PRO", want: billing.PriceTable{Prices: map[string]billing.Plan{"price_basic": billing.Basic, "price_pro": billing.Pro}}},
		{in: " price_basic = basic , lookup_key:pro_m=Pro, product:prod_1=FREE, metadata:plan ", want: billing.PriceTable{
			Prices:             map[string]billing.Plan{"price_basic": billing.Basic},
			LookupKeys:         map[string]billing.Plan{"pro_m": billing.Pro},
			Products:           map[string]billing.Plan{"prod_1": billing.Free},
			ProductMetadataKey: "plan",
		}},
		{in: "", err: "price table is empty"},
		{in: "price_basic", err: "want KEY=PLAN"},
		{in: "price_basic=GOLD", err: "unknown plan"},
		{in: "=PRO", err: "empty key"},
		{in: "lookup_key:=PRO", err: "empty key"},
		{in: "a=PRO,a=BASIC", err: "key given twice"},
		{in: "metadata:a,metadata:b", err: "one metadata:KEY"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := billing.ParsePriceTable(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.HasPrefix(err.Error(), "billing: ") {
					t.Fatalf("err = %v, want billing: ...%q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, got); d != "" {
				t.Fatalf("table (-want +got):\n%s", d)
			}
		})
	}
	t.Run("Plan", func(t *testing.T) {
		tab := testPlans(t)
		for _, c := range []struct {
			p    *stripe.Price
			want billing.Plan
			ok   bool
		}{
			{nil, "", false},
			{&stripe.Price{ID: "price_pro"}, billing.Pro, true},
			{&stripe.Price{ID: "x", LookupKey: "pro_yearly"}, billing.Pro, true},
			{&stripe.Price{ID: "x", Product: &stripe.Product{ID: "prod_team"}}, billing.Pro, true},
			{&stripe.Price{ID: "x", Product: &stripe.Product{ID: "p", Metadata: map[string]string{"plan": "BASIC"}}}, billing.Basic, true},
			{&stripe.Price{ID: "x"}, "", false},
		} {
			got, ok := tab.Plan(c.p)
			if got != c.want || ok != c.ok {
				t.Errorf("Plan(%+v) = %q, %v; want %q, %v", c.p, got, ok, c.want, c.ok)
			}
		}
	})
}
