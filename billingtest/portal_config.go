package billingtest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"
)

// DefaultPortalConfiguration is the id of the emulator's default billing
// portal configuration, the one a session without configuration uses. It
// has every feature on: customer_update (email, address, name),
// invoice_history, payment_method_update, subscription_cancel (at period
// end) and subscription_update (price; any active recurring price of the
// catalog, since its products list is empty). Change it with POST
// /v1/billing_portal/configurations/bpc_billingtest_default.
const DefaultPortalConfiguration = defaultConfigID

const defaultConfigID = "bpc_billingtest_default"

type portalProduct struct {
	product string
	prices  []string
}

// portalConfig is a billing_portal.configuration.
type portalConfig struct {
	id                       string
	seq                      int64
	active, isDefault        bool
	defaultReturnURL         string
	headline, privacy, terms string
	metadata                 map[string]string
	created, updated         time.Time
	customerUpdate           bool
	allowedUpdates           []string // email, address, name, phone, shipping, tax_id
	invoiceHistory           bool
	paymentMethodUpdate      bool
	cancel                   bool
	cancelMode               string // at_period_end, immediately
	cancelProration          string
	cancelReasons            bool
	update                   bool
	updateAllowed            []string // price, quantity, promotion_code
	updateProducts           []portalProduct
	updateProration          string
	loginPage                bool
	subscriptionPause        bool
}

func defaultPortalConfig(now time.Time, seq int64) *portalConfig {
	return &portalConfig{id: defaultConfigID, seq: seq, active: true, isDefault: true, created: now, updated: now,
		customerUpdate: true, allowedUpdates: []string{"email", "address", "name"},
		invoiceHistory: true, paymentMethodUpdate: true,
		cancel: true, cancelMode: "at_period_end", cancelProration: "none",
		update: true, updateAllowed: []string{"price"}, updateProration: "create_prorations"}
}

func (c *portalConfig) object() map[string]any {
	products := make([]any, len(c.updateProducts))
	for i, p := range c.updateProducts {
		products[i] = map[string]any{"product": p.product, "prices": slices.Clone(p.prices)}
	}
	return map[string]any{
		"id": c.id, "object": "billing_portal.configuration", "active": c.active, "application": nil,
		"business_profile": map[string]any{"headline": orNil(c.headline), "privacy_policy_url": orNil(c.privacy),
			"terms_of_service_url": orNil(c.terms)},
		"created": c.created.Unix(), "updated": c.updated.Unix(), "default_return_url": orNil(c.defaultReturnURL),
		"is_default": c.isDefault, "livemode": false, "metadata": orEmpty(c.metadata),
		"login_page": map[string]any{"enabled": c.loginPage, "url": nil},
		"features": map[string]any{
			"customer_update":       map[string]any{"enabled": c.customerUpdate, "allowed_updates": nonNil(c.allowedUpdates)},
			"invoice_history":       map[string]any{"enabled": c.invoiceHistory},
			"payment_method_update": map[string]any{"enabled": c.paymentMethodUpdate},
			"subscription_cancel": map[string]any{"enabled": c.cancel, "mode": c.cancelMode, "proration_behavior": c.cancelProration,
				"cancellation_reason": map[string]any{"enabled": c.cancelReasons,
					"options": []string{"too_expensive", "missing_features", "switched_service", "unused", "other"}}},
			"subscription_pause": map[string]any{"enabled": c.subscriptionPause},
			"subscription_update": map[string]any{"enabled": c.update, "default_allowed_updates": nonNil(c.updateAllowed),
				"products": products, "proration_behavior": c.updateProration},
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}

// allowedPricesLocked returns the price ids a plan change may pick under
// c: its products' prices, or, when it lists none, every active recurring
// price of the catalog (oldest first).
func (s *Stripe) allowedPricesLocked(c *portalConfig) []string {
	var out []string
	if len(c.updateProducts) > 0 {
		for _, p := range c.updateProducts {
			for _, id := range p.prices {
				if pr, ok := s.catalog.prices[id]; ok && pr.Active && pr.Interval != "" && !slices.Contains(out, id) {
					out = append(out, id)
				}
			}
		}
		return out
	}
	var ps []*priceRec
	for _, p := range s.catalog.prices {
		if p.Active && p.Interval != "" {
			ps = append(ps, p)
		}
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].seq < ps[j].seq })
	for _, p := range ps {
		out = append(out, p.ID)
	}
	return out
}

var (
	customerUpdates = []string{"email", "address", "name", "phone", "shipping", "tax_id"}
	planUpdates     = []string{"price", "quantity", "promotion_code"}
	prorations      = []string{"none", "create_prorations", "always_invoice"}
)

// applyConfigLocked sets on c what f sends.
func (s *Stripe) applyConfigLocked(c *portalConfig, f *form) *apiError {
	const feat = "features"
	set := func(key string, dst *bool) {
		if v, ok := f.boolean(key); ok {
			*dst = v
		}
	}
	set("active", &c.active)
	if v, ok := f.opt("default_return_url"); ok {
		if v != "" && !validURL(v) {
			f.invalid("default_return_url", "url_invalid", "Not a valid URL")
		}
		c.defaultReturnURL = v
	}
	for key, dst := range map[string]*string{"business_profile[headline]": &c.headline,
		"business_profile[privacy_policy_url]": &c.privacy, "business_profile[terms_of_service_url]": &c.terms} {
		if v, ok := f.opt(key); ok {
			*dst = v
		}
	}
	c.metadata = f.metadata("metadata", c.metadata)
	set("login_page[enabled]", &c.loginPage)
	set(feat+"[customer_update][enabled]", &c.customerUpdate)
	if v, ok := f.list(feat + "[customer_update][allowed_updates]"); ok {
		for _, u := range v {
			if !slices.Contains(customerUpdates, u) {
				f.invalid(feat+"[customer_update][allowed_updates]", "parameter_invalid_string",
					fmt.Sprintf("Invalid allowed_updates value %q: use email, address, name, phone, shipping or tax_id.", u))
			}
		}
		c.allowedUpdates = v
	}
	set(feat+"[invoice_history][enabled]", &c.invoiceHistory)
	set(feat+"[payment_method_update][enabled]", &c.paymentMethodUpdate)
	set(feat+"[subscription_pause][enabled]", &c.subscriptionPause)
	set(feat+"[subscription_cancel][enabled]", &c.cancel)
	c.cancelMode = f.oneOf(feat+"[subscription_cancel][mode]", c.cancelMode, "at_period_end", "immediately")
	c.cancelProration = f.oneOf(feat+"[subscription_cancel][proration_behavior]", c.cancelProration, "none", "create_prorations")
	set(feat+"[subscription_cancel][cancellation_reason][enabled]", &c.cancelReasons)
	set(feat+"[subscription_update][enabled]", &c.update)
	if v, ok := f.list(feat + "[subscription_update][default_allowed_updates]"); ok {
		for _, u := range v {
			if !slices.Contains(planUpdates, u) {
				f.invalid(feat+"[subscription_update][default_allowed_updates]", "parameter_invalid_string",
					fmt.Sprintf("Invalid default_allowed_updates value %q: use price, quantity or promotion_code.", u))
			}
		}
		c.updateAllowed = v
	}
	c.updateProration = f.oneOf(feat+"[subscription_update][proration_behavior]", c.updateProration, prorations...)
	key := feat + "[subscription_update][products]"
	if v, ok := f.opt(key); ok && v == "" {
		c.updateProducts = nil
	}
	if idx := f.indices(key); len(idx) > 0 {
		var products []portalProduct
		for _, i := range idx {
			pk := fmt.Sprintf("%s[%d]", key, i)
			p := portalProduct{product: f.require(pk + "[product]")}
			p.prices, _ = f.list(pk + "[prices]")
			if len(p.prices) == 0 && f.err() == nil {
				f.fail(missingParam(pk + "[prices]"))
			}
			if f.err() != nil {
				break
			}
			if _, ok := s.catalog.products[p.product]; !ok {
				e := noSuch(pk+"[product]", "product", p.product)
				return &e
			}
			for j, id := range p.prices {
				pr, ok := s.catalog.prices[id]
				switch {
				case !ok:
					e := noSuch(fmt.Sprintf("%s[prices][%d]", pk, j), "price", id)
					return &e
				case pr.Product != p.product:
					return &apiError{Type: "invalid_request_error", Param: fmt.Sprintf("%s[prices][%d]", pk, j),
						Message: fmt.Sprintf("The price %s belongs to product %s, not %s.", id, pr.Product, p.product)}
				case pr.Interval == "":
					return &apiError{Type: "invalid_request_error", Param: fmt.Sprintf("%s[prices][%d]", pk, j),
						Message: fmt.Sprintf("The price %s is not recurring; a plan change takes recurring prices only.", id)}
				}
			}
			products = append(products, p)
		}
		c.updateProducts = products
	}
	if c.isDefault && !c.active {
		f.invalid("active", "", "The default configuration cannot be deactivated.")
	}
	return f.err()
}

// POST /v1/billing_portal/configurations
func (s *Stripe) createConfig(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	c := &portalConfig{id: NewID("bpc"), active: true, created: now, updated: now, cancelMode: "at_period_end",
		cancelProration: "none", updateProration: "create_prorations", updateAllowed: []string{}, allowedUpdates: []string{}}
	if e := s.applyConfigLocked(c, f); e != nil {
		writeConfigError(w, e)
		return
	}
	c.seq = s.nextSeq()
	s.portal.configs[c.id] = c
	obj := c.object()
	s.emitLocked("billing_portal.configuration.created", obj, nil, originOf(w, r))
	writeJSON(w, http.StatusOK, obj)
}

func writeConfigError(w http.ResponseWriter, e *apiError) {
	status := http.StatusBadRequest
	if e.Code == "resource_missing" {
		status = http.StatusNotFound
	}
	writeError(w, status, *e)
}

// GET and POST /v1/billing_portal/configurations/{id}
func (s *Stripe) config(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.portal.configs[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("configuration", "configuration", id))
		return
	}
	if r.Method == http.MethodPost {
		next := *c
		next.metadata = cloneMap(c.metadata)
		if e := s.applyConfigLocked(&next, f); e != nil {
			writeConfigError(w, e)
			return
		}
		old := c.object()
		next.updated = s.now()
		*c = next
		s.emitChangeLocked("billing_portal.configuration.updated", old, c.object(), originOf(w, r))
	}
	writeJSON(w, http.StatusOK, c.object())
}

// GET /v1/billing_portal/configurations
func (s *Stripe) listConfigs(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	active, hasActive := f.boolean("active")
	isDefault, hasDefault := f.boolean("is_default")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var cs []*portalConfig
	for _, c := range s.portal.configs {
		if (hasActive && c.active != active) || (hasDefault && c.isDefault != isDefault) {
			continue
		}
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].seq > cs[j].seq })
	ids, objs := make([]string, len(cs)), make([]map[string]any, len(cs))
	for i, c := range cs {
		ids[i], objs[i] = c.id, c.object()
	}
	writeList(w, f, PathPortalConfigurations, ids, objs)
}
