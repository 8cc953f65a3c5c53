package billing

import "github.com/stripe/stripe-go/v76"

// FlowType names a portal deep-link flow.
type FlowType string

// The portal flows Stripe offers (flow_data.type).
const (
	// FlowPaymentMethodUpdate opens the "update payment method" page.
	FlowPaymentMethodUpdate FlowType = "payment_method_update"
	// FlowSubscriptionCancel opens the cancelation of a subscription,
	// optionally offering a retention coupon.
	FlowSubscriptionCancel FlowType = "subscription_cancel"
	// FlowSubscriptionUpdate opens the plan picker of a subscription.
	FlowSubscriptionUpdate FlowType = "subscription_update"
	// FlowSubscriptionUpdateConfirm opens the confirmation of a given change
	// (new price or quantity, optional discount) of a subscription.
	FlowSubscriptionUpdateConfirm FlowType = "subscription_update_confirm"
)

// AfterCompletionType says what the portal does when a flow completes.
type AfterCompletionType string

// The after-completion behaviours.
const (
	// AfterPortalHome returns to the portal's home page (Stripe's default).
	AfterPortalHome AfterCompletionType = "portal_homepage"
	// AfterRedirect sends the user to AfterCompletion.ReturnURL, which must
	// match PortalConfig.AllowedReturnURLs.
	AfterRedirect AfterCompletionType = "redirect"
	// AfterHostedConfirmation shows Stripe's confirmation page with an
	// optional custom message.
	AfterHostedConfirmation AfterCompletionType = "hosted_confirmation"
)

// Flow is a deep link into one portal flow. Which fields apply depends on
// Type; a field that does not apply to the Type is rejected.
//
// A flow that acts on a subscription (every type but payment method update)
// only ever acts on the user's own: Subscription may be left empty to mean
// the user's stored subscription, and a named one must be it, or be proven
// the customer's through PortalConfig.Subscriptions.
type Flow struct {
	// Type is the flow. Required.
	Type FlowType `json:"type"`
	// Subscription is the subscription (sub_...) the flow acts on.
	Subscription string `json:"subscription,omitempty"`
	// RetentionCoupon, for FlowSubscriptionCancel, is a coupon offered to
	// keep the customer.
	RetentionCoupon string `json:"retention_coupon,omitempty"`
	// Items, for FlowSubscriptionUpdateConfirm, is the change to confirm:
	// exactly one subscription item with its new price and/or quantity.
	Items []FlowItem `json:"items,omitempty"`
	// Discounts, for FlowSubscriptionUpdateConfirm, is at most one coupon or
	// promotion code applied with the change.
	Discounts []FlowDiscount `json:"discounts,omitempty"`
	// AfterCompletion, if set, says what happens once the flow completes.
	AfterCompletion *AfterCompletion `json:"after_completion,omitempty"`
}

// FlowItem is one subscription item of a FlowSubscriptionUpdateConfirm.
type FlowItem struct {
	// ID is the subscription item (si_...). Required.
	ID string `json:"id"`
	// Price is the new price (price_...), if it changes.
	Price string `json:"price,omitempty"`
	// Quantity is the new quantity, if it changes; at least 1.
	Quantity int64 `json:"quantity,omitempty"`
}

// FlowDiscount is a coupon or a promotion code (exactly one of the two).
type FlowDiscount struct {
	// Coupon is a coupon id.
	Coupon string `json:"coupon,omitempty"`
	// PromotionCode is a promotion code id (promo_...).
	PromotionCode string `json:"promotion_code,omitempty"`
}

// AfterCompletion is what the portal does when a flow completes.
type AfterCompletion struct {
	// Type is the behaviour. Required.
	Type AfterCompletionType `json:"type"`
	// ReturnURL, for AfterRedirect, is where the user goes; it must match
	// PortalConfig.AllowedReturnURLs.
	ReturnURL string `json:"return_url,omitempty"`
	// Message, for AfterHostedConfirmation, is the custom message shown.
	Message string `json:"message,omitempty"`
}

const maxFlowText = 500

// validate checks the flow without calling anything; errors are 400s that
// say what to fix.
func (f *Flow) validate(allow allowlist) *Error {
	for _, s := range []string{f.Subscription, f.RetentionCoupon} {
		if !safeText(s) {
			return badRequest("flow has an invalid id")
		}
	}
	switch f.Type {
	case FlowPaymentMethodUpdate:
		if f.Subscription != "" || f.RetentionCoupon != "" || len(f.Items) > 0 || len(f.Discounts) > 0 {
			return badRequest("flow payment_method_update takes no subscription, coupon, items or discounts")
		}
	case FlowSubscriptionCancel:
		if len(f.Items) > 0 || len(f.Discounts) > 0 {
			return badRequest("flow subscription_cancel takes no items or discounts")
		}
	case FlowSubscriptionUpdate:
		if f.RetentionCoupon != "" || len(f.Items) > 0 || len(f.Discounts) > 0 {
			return badRequest("flow subscription_update takes no coupon, items or discounts")
		}
	case FlowSubscriptionUpdateConfirm:
		if f.RetentionCoupon != "" {
			return badRequest("flow subscription_update_confirm takes no retention_coupon")
		}
		if len(f.Items) != 1 {
			return badRequest("flow subscription_update_confirm needs exactly one item")
		}
		it := f.Items[0]
		if it.ID == "" || !safeText(it.ID) || !safeText(it.Price) || it.Quantity < 0 || (it.Price == "" && it.Quantity == 0) {
			return badRequest("flow item needs an id and a new price or a quantity of at least 1")
		}
		if len(f.Discounts) > 1 {
			return badRequest("flow subscription_update_confirm takes at most one discount")
		}
		for _, d := range f.Discounts {
			if (d.Coupon == "") == (d.PromotionCode == "") || !safeText(d.Coupon) || !safeText(d.PromotionCode) {
				return badRequest("flow discount needs exactly one of coupon and promotion_code")
			}
		}
	case "":
		return badRequest("flow needs a type")
	default:
		return badRequest("flow type is not supported")
	}
	if a := f.AfterCompletion; a != nil {
		switch a.Type {
		case AfterPortalHome:
			if a.ReturnURL != "" || a.Message != "" {
				return badRequest("after_completion portal_homepage takes no return_url or message")
			}
		case AfterRedirect:
			if a.Message != "" {
				return badRequest("after_completion redirect takes no message")
			}
			if _, ok := allow.match(a.ReturnURL); !ok {
				return badRequest("after_completion return_url is not allowed")
			}
		case AfterHostedConfirmation:
			if a.ReturnURL != "" {
				return badRequest("after_completion hosted_confirmation takes no return_url")
			}
			if len(a.Message) > maxFlowText || !printable(a.Message) {
				return badRequest("after_completion message is too long or not printable")
			}
		default:
			return badRequest("after_completion type is not supported")
		}
	}
	return nil
}

// subscription returns the subscription the flow names, "" if it acts on
// none or leaves it to the user's stored one.
func (f *Flow) subscription() string { return f.Subscription }

// actsOnSubscription reports whether the flow needs a subscription.
func (f *Flow) actsOnSubscription() bool { return f.Type != FlowPaymentMethodUpdate }

// params returns Stripe's flow_data for the flow acting on sub.
func (f *Flow) params(sub string) *stripe.BillingPortalSessionFlowDataParams {
	p := &stripe.BillingPortalSessionFlowDataParams{Type: stripe.String(string(f.Type))}
	switch f.Type {
	case FlowSubscriptionCancel:
		p.SubscriptionCancel = &stripe.BillingPortalSessionFlowDataSubscriptionCancelParams{Subscription: stripe.String(sub)}
		if f.RetentionCoupon != "" {
			p.SubscriptionCancel.Retention = &stripe.BillingPortalSessionFlowDataSubscriptionCancelRetentionParams{
				Type:        stripe.String("coupon_offer"),
				CouponOffer: &stripe.BillingPortalSessionFlowDataSubscriptionCancelRetentionCouponOfferParams{Coupon: stripe.String(f.RetentionCoupon)},
			}
		}
	case FlowSubscriptionUpdate:
		p.SubscriptionUpdate = &stripe.BillingPortalSessionFlowDataSubscriptionUpdateParams{Subscription: stripe.String(sub)}
	case FlowSubscriptionUpdateConfirm:
		c := &stripe.BillingPortalSessionFlowDataSubscriptionUpdateConfirmParams{Subscription: stripe.String(sub)}
		for _, it := range f.Items {
			ip := &stripe.BillingPortalSessionFlowDataSubscriptionUpdateConfirmItemParams{ID: stripe.String(it.ID)}
			if it.Price != "" {
				ip.Price = stripe.String(it.Price)
			}
			if it.Quantity > 0 {
				ip.Quantity = stripe.Int64(it.Quantity)
			}
			c.Items = append(c.Items, ip)
		}
		for _, d := range f.Discounts {
			dp := &stripe.BillingPortalSessionFlowDataSubscriptionUpdateConfirmDiscountParams{}
			if d.Coupon != "" {
				dp.Coupon = stripe.String(d.Coupon)
			} else {
				dp.PromotionCode = stripe.String(d.PromotionCode)
			}
			c.Discounts = append(c.Discounts, dp)
		}
		p.SubscriptionUpdateConfirm = c
	}
	if a := f.AfterCompletion; a != nil {
		p.AfterCompletion = &stripe.BillingPortalSessionFlowDataAfterCompletionParams{Type: stripe.String(string(a.Type))}
		switch a.Type {
		case AfterRedirect:
			p.AfterCompletion.Redirect = &stripe.BillingPortalSessionFlowDataAfterCompletionRedirectParams{ReturnURL: stripe.String(a.ReturnURL)}
		case AfterHostedConfirmation:
			if a.Message != "" {
				p.AfterCompletion.HostedConfirmation = &stripe.BillingPortalSessionFlowDataAfterCompletionHostedConfirmationParams{CustomMessage: stripe.String(a.Message)}
			}
		}
	}
	return p
}

// safeText reports whether s is empty or a plausible Stripe id: short,
// letters, digits, '_' and '-' only.
func safeText(s string) bool {
	if len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// printable reports whether s has no control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return false
		}
	}
	return true
}
