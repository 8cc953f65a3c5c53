package billing_test

import (
	"testing"

	"github.com/contafy/billing"
)

func TestParsePlan(t *testing.T) {
	for in, want := range map[string]billing.Plan{"FREE": billing.Free, "basic": billing.Basic, " Pro ": billing.Pro} {
		got, err := billing.ParsePlan(in)
		if err != nil || got != want {
			t.Errorf("ParsePlan(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ENTERPRISE", "PRO1"} {
		if _, err := billing.ParsePlan(in); err == nil {
			t.Errorf("ParsePlan(%q) accepted", in)
		}
	}
	if billing.Free.Paid() || !billing.Basic.Paid() || !billing.Pro.Paid() || billing.Plan("pro").Paid() {
		t.Error("Paid() wrong")
	}
}
