package billingtest_test

import (
	"testing"

	"github.com/contafy/billing/billingtest"
	"github.com/google/go-cmp/cmp"
	"github.com/stripe/stripe-go/v76"
)

// TestEventsPagination lists the events Stripe's way: newest first, in
// pages, through stripe-go's iterator and page by page.
func TestEventsPagination(t *testing.T) {
	s := billingtest.StartStripe(t)
	api := s.API()
	var created []string // customer.created event ids, oldest first
	for range 7 {
		if _, err := api.Customers.New(&stripe.CustomerParams{}); err != nil {
			t.Fatal(err)
		}
		evs := s.Events()
		created = append(created, evs[len(evs)-1].ID)
	}
	s.SeedCatalog()
	s.AddCustomer("cus_ev")
	sub, err := api.Subscriptions.New(&stripe.SubscriptionParams{Customer: stripe.String("cus_ev"),
		Items: []*stripe.SubscriptionItemsParams{{Price: stripe.String(billingtest.PriceBasic)}}})
	if err != nil {
		t.Fatal(err)
	}
	all := s.Events()
	newestFirst := func(ids []string) []string {
		out := make([]string, len(ids))
		for i, id := range ids {
			out[len(ids)-1-i] = id
		}
		return out
	}
	var allIDs []string
	for _, e := range all {
		allIDs = append(allIDs, e.ID)
	}

	iter := func(p *stripe.EventListParams) []string {
		var ids []string
		it := api.Events.List(p)
		for it.Next() {
			ids = append(ids, it.Event().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return ids
	}
	page := func(p *stripe.EventListParams) ([]string, bool) {
		p.Single = true
		var ids []string
		it := api.Events.List(p)
		for it.Next() {
			ids = append(ids, it.Event().ID)
		}
		if err := it.Err(); err != nil {
			t.Fatal(err)
		}
		return ids, it.Meta().HasMore
	}
	withLimit := func(n int64) *stripe.EventListParams {
		p := &stripe.EventListParams{}
		p.Limit = stripe.Int64(n)
		return p
	}

	t.Run("iterator over pages of 3", func(t *testing.T) {
		if diff := cmp.Diff(newestFirst(allIDs), iter(withLimit(3))); diff != "" {
			t.Errorf("ids (-want +got):\n%s", diff)
		}
	})
	t.Run("pages", func(t *testing.T) {
		want := newestFirst(created)
		p := &stripe.EventListParams{Type: stripe.String("customer.created")}
		p.Limit = stripe.Int64(3)
		first, more := page(p)
		if diff := cmp.Diff(want[:3], first); diff != "" || !more {
			t.Errorf("first page (-want +got):\n%s has_more %v", diff, more)
		}
		p = &stripe.EventListParams{Type: stripe.String("customer.created")}
		p.Limit, p.StartingAfter = stripe.Int64(3), stripe.String(first[2])
		second, more := page(p)
		if diff := cmp.Diff(want[3:6], second); diff != "" || !more {
			t.Errorf("second page (-want +got):\n%s has_more %v", diff, more)
		}
		p = &stripe.EventListParams{Type: stripe.String("customer.created")}
		p.Limit, p.StartingAfter = stripe.Int64(3), stripe.String(second[2])
		last, more := page(p)
		if diff := cmp.Diff(want[6:], last); diff != "" || more {
			t.Errorf("last page (-want +got):\n%s has_more %v", diff, more)
		}
		// ending_before: the page just before an id; stripe-go hands it
		// over oldest first.
		p = &stripe.EventListParams{Type: stripe.String("customer.created")}
		p.Limit, p.EndingBefore = stripe.Int64(2), stripe.String(want[4])
		back, more := page(p)
		if diff := cmp.Diff([]string{want[3], want[2]}, back); diff != "" || !more {
			t.Errorf("ending_before page (-want +got):\n%s has_more %v", diff, more)
		}
	})
	t.Run("filters", func(t *testing.T) {
		tests := []struct {
			name   string
			params *stripe.EventListParams
			want   []string
		}{
			{"types", &stripe.EventListParams{Types: stripe.StringSlice([]string{"invoice.paid", "customer.subscription.created"})}, nil},
			{"type wildcard", &stripe.EventListParams{Type: stripe.String("customer.subscription.*")}, nil},
			{"created in range", &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThanOrEqual: all[0].Created.Unix(), LesserThanOrEqual: all[len(all)-1].Created.Unix()}}, newestFirst(allIDs)},
			{"created after", &stripe.EventListParams{CreatedRange: &stripe.RangeQueryParams{GreaterThan: all[len(all)-1].Created.Unix()}}, nil},
			{"delivery_success=false without endpoints", &stripe.EventListParams{DeliverySuccess: stripe.Bool(false)}, nil},
		}
		for _, e := range all {
			switch e.Type {
			case "invoice.paid", "customer.subscription.created":
				tests[0].want = append([]string{e.ID}, tests[0].want...)
			}
			if e.Type == "customer.subscription.created" {
				tests[1].want = []string{e.ID}
			}
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if diff := cmp.Diff(tt.want, iter(tt.params)); diff != "" {
					t.Errorf("ids (-want +got):\n%s", diff)
				}
			})
		}
	})
	t.Run("get", func(t *testing.T) {
		ev, err := api.Events.Get(all[len(all)-1].ID, nil)
		if err != nil || ev.Type != "invoice.payment_succeeded" || ev.Data.Object["subscription"] != sub.ID {
			t.Errorf("Get = %+v, %v", ev, err)
		}
		if _, err := api.Events.Get("evt_nope", nil); !isCode(err, 404, stripe.ErrorCodeResourceMissing) {
			t.Errorf("Get unknown: %v", err)
		}
	})
}

// TestPreviousAttributes checks the shape of data.previous_attributes:
// only the changed keys, nested objects with only their changed keys, the
// old values.
func TestPreviousAttributes(t *testing.T) {
	s := billingtest.StartStripe(t)
	api := s.API()
	c, err := api.Customers.New(&stripe.CustomerParams{Email: stripe.String("old@example.com"), Name: stripe.String("Old"),
		Address: &stripe.AddressParams{City: stripe.String("Paris"), Country: stripe.String("FR")}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		params *stripe.CustomerParams
		want   map[string]any
	}{
		{"email", &stripe.CustomerParams{Email: stripe.String("new@example.com")}, map[string]any{"email": "old@example.com"}},
		{"nested city", &stripe.CustomerParams{Address: &stripe.AddressParams{City: stripe.String("Lyon")}}, map[string]any{"address": map[string]any{"city": "Paris"}}},
		{"metadata added", &stripe.CustomerParams{Metadata: map[string]string{"k": "v"}}, map[string]any{"metadata": map[string]any{"k": nil}}},
		{"two fields", &stripe.CustomerParams{Name: stripe.String("New"), Phone: stripe.String("+100")}, map[string]any{"name": "Old", "phone": nil}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := api.Customers.Update(c.ID, tt.params); err != nil {
				t.Fatal(err)
			}
			ev := lastEvent(t, s, "customer.updated")
			if diff := cmp.Diff(tt.want, ev.Data.PreviousAttributes); diff != "" {
				t.Errorf("previous_attributes (-want +got):\n%s", diff)
			}
		})
	}
	n := len(s.Events())
	if _, err := api.Customers.Update(c.ID, &stripe.CustomerParams{Email: stripe.String("new@example.com")}); err != nil {
		t.Fatal(err)
	}
	if len(s.Events()) != n {
		t.Error("an update that changes nothing emitted an event")
	}
}
