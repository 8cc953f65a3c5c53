package billingtest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"time"
)

// StripeProduct is a product of the emulator's catalog.
type StripeProduct struct {
	// ID is the product id: prod_... unless the creator chose one.
	ID string
	// Name is the product's name. Default: the ID.
	Name string
	// Description is the product's description.
	Description string
	// Active is false for an archived product. [Stripe.AddProduct] makes
	// it true.
	Active bool
	// Metadata is the product's metadata.
	Metadata map[string]string
	// Created is when the product was created. Default: the emulator's
	// now.
	Created time.Time
}

// StripePrice is a price of the emulator's catalog.
type StripePrice struct {
	// ID is the price id (price_...; [Stripe.AddPrice] may choose one).
	ID string
	// Product is the id of the price's product. Required.
	Product string
	// Currency is the ISO currency code, lower case. Default "usd".
	Currency string
	// UnitAmount is the price in the currency's smallest unit (cents).
	UnitAmount int64
	// Interval is the recurring interval: day, week, month or year; empty
	// for a one-time price. [Stripe.AddPrice] defaults it to month.
	Interval string
	// IntervalCount is how many intervals make a period. Default 1.
	IntervalCount int64
	// LookupKey is the price's lookup key, unique among prices.
	LookupKey string
	// Nickname is the price's nickname.
	Nickname string
	// Active is false for an archived price. [Stripe.AddPrice] makes it
	// true.
	Active bool
	// Metadata is the price's metadata.
	Metadata map[string]string
	// Created is when the price was created. Default: the emulator's now.
	Created time.Time
}

// period returns the length of one period of a recurring interval. The
// emulator's month is 30 days and its year 365, so that advancing the clock
// by 720h always passes a monthly period's end.
func period(interval string, count int64) time.Duration {
	if count < 1 {
		count = 1
	}
	day := 24 * time.Hour
	switch interval {
	case "day":
		return time.Duration(count) * day
	case "week":
		return time.Duration(count) * 7 * day
	case "year":
		return time.Duration(count) * 365 * day
	}
	return time.Duration(count) * 30 * day
}

type productRec struct {
	StripeProduct
	seq     int64
	updated time.Time
}

type priceRec struct {
	StripePrice
	seq int64
}

type catalog struct {
	products map[string]*productRec
	prices   map[string]*priceRec
}

// AddProduct puts p into the catalog (replacing a product with the same
// ID) without an event, and returns it with its defaults: a fresh prod_...
// id when p.ID is empty, Name the ID when empty, Active true, Created the
// emulator's now when zero.
func (s *Stripe) AddProduct(p StripeProduct) StripeProduct {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID == "" {
		p.ID = NewID("prod")
	}
	if p.Name == "" {
		p.Name = p.ID
	}
	if p.Created.IsZero() {
		p.Created = s.now()
	}
	p.Active = true
	p.Metadata = cloneMap(p.Metadata)
	s.catalog.products[p.ID] = &productRec{StripeProduct: p, seq: s.nextSeq(), updated: p.Created}
	return p
}

// AddPrice puts p into the catalog (replacing a price with the same ID)
// without an event, adding its product if unknown, and returns it with its
// defaults: a fresh price_... id when p.ID is empty, Currency "usd",
// Interval "month", IntervalCount 1, Active true, Created the emulator's
// now. It panics if p.Product is empty, a mistake in the test.
func (s *Stripe) AddPrice(p StripePrice) StripePrice {
	if p.Product == "" {
		panic("billingtest: AddPrice needs Product")
	}
	if _, ok := s.Product(p.Product); !ok {
		s.AddProduct(StripeProduct{ID: p.Product})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.ID == "" {
		p.ID = NewID("price")
	}
	p.Currency = orDefault(p.Currency, "usd")
	p.Interval = orDefault(p.Interval, "month")
	if p.IntervalCount == 0 {
		p.IntervalCount = 1
	}
	if p.Created.IsZero() {
		p.Created = s.now()
	}
	p.Active = true
	p.Metadata = cloneMap(p.Metadata)
	if p.LookupKey != "" {
		for _, o := range s.catalog.prices {
			if o.LookupKey == p.LookupKey && o.ID != p.ID {
				o.LookupKey = "" // transferred, as transfer_lookup_key does
			}
		}
	}
	s.catalog.prices[p.ID] = &priceRec{StripePrice: p, seq: s.nextSeq()}
	return p
}

// Product returns the catalog's product with the given id.
func (s *Stripe) Product(id string) (StripeProduct, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.catalog.products[id]
	if !ok {
		return StripeProduct{}, false
	}
	out := p.StripeProduct
	out.Metadata = cloneMap(out.Metadata)
	return out, true
}

// Price returns the catalog's price with the given id.
func (s *Stripe) Price(id string) (StripePrice, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.catalog.prices[id]
	if !ok {
		return StripePrice{}, false
	}
	out := p.StripePrice
	out.Metadata = cloneMap(out.Metadata)
	return out, true
}

func (p *productRec) object() map[string]any {
	return map[string]any{
		"id": p.ID, "object": "product", "active": p.Active, "created": p.Created.Unix(), "updated": p.updated.Unix(),
		"default_price": nil, "description": orNil(p.Description), "images": []string{}, "features": []any{},
		"livemode": false, "metadata": orEmpty(p.Metadata), "name": p.Name, "type": "service", "url": nil,
		"package_dimensions": nil, "shippable": nil, "statement_descriptor": nil, "tax_code": nil, "unit_label": nil,
	}
}

func (p *priceRec) object() map[string]any {
	var recurring any
	typ := "one_time"
	if p.Interval != "" {
		typ = "recurring"
		recurring = map[string]any{"aggregate_usage": nil, "interval": p.Interval, "interval_count": p.IntervalCount,
			"trial_period_days": nil, "usage_type": "licensed"}
	}
	return map[string]any{
		"id": p.ID, "object": "price", "active": p.Active, "billing_scheme": "per_unit", "created": p.Created.Unix(),
		"currency": p.Currency, "custom_unit_amount": nil, "livemode": false, "lookup_key": orNil(p.LookupKey),
		"metadata": orEmpty(p.Metadata), "nickname": orNil(p.Nickname), "product": p.Product, "recurring": recurring,
		"tax_behavior": "unspecified", "tiers_mode": nil, "transform_quantity": nil, "type": typ,
		"unit_amount": p.UnitAmount, "unit_amount_decimal": fmt.Sprint(p.UnitAmount),
	}
}

var intervals = []string{"day", "week", "month", "year"}

// POST /v1/products
func (s *Stripe) createProduct(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	name := f.require("name")
	id := f.str("id")
	active, hasActive := f.boolean("active")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if id == "" {
		id = NewID("prod")
	} else if _, dup := s.catalog.products[id]; dup {
		writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Code: "resource_already_exists", Param: "id",
			Message: fmt.Sprintf("Product already exists: %s. Choose another id, or leave id out for a generated one.", id)})
		return
	}
	now := s.now()
	p := &productRec{StripeProduct: StripeProduct{ID: id, Name: name, Description: f.str("description"), Active: !hasActive || active,
		Metadata: f.metadata("metadata", nil), Created: now}, seq: s.nextSeq(), updated: now}
	s.catalog.products[id] = p
	obj := p.object()
	s.emitLocked("product.created", obj, nil, originOf(w, r))
	writeJSON(w, http.StatusOK, obj)
}

// GET and POST /v1/products/{id}
func (s *Stripe) product(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	id := r.PathValue("id")
	active, hasActive := f.boolean("active")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.catalog.products[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "product", id))
		return
	}
	if r.Method == http.MethodPost {
		old := p.object()
		if v, ok := f.opt("name"); ok && v != "" {
			p.Name = v
		}
		if v, ok := f.opt("description"); ok {
			p.Description = v
		}
		if hasActive {
			p.Active = active
		}
		p.Metadata = f.metadata("metadata", p.Metadata)
		p.updated = s.now()
		s.emitChangeLocked("product.updated", old, p.object(), originOf(w, r))
	}
	writeJSON(w, http.StatusOK, p.object())
}

// GET /v1/products
func (s *Stripe) listProducts(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	active, hasActive := f.boolean("active")
	ids, hasIDs := f.list("ids")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*productRec
	for _, p := range s.catalog.products {
		if (hasActive && p.Active != active) || (hasIDs && !slices.Contains(ids, p.ID)) {
			continue
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].seq > ps[j].seq })
	keys, objs := make([]string, len(ps)), make([]map[string]any, len(ps))
	for i, p := range ps {
		keys[i], objs[i] = p.ID, p.object()
	}
	writeList(w, f, PathProducts, keys, objs)
}

// POST /v1/prices
func (s *Stripe) createPrice(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	product := f.str("product")
	productName := f.str("product_data[name]")
	if product == "" && productName == "" {
		f.fail(missingParam("product"))
	}
	currency := f.require("currency")
	amount, hasAmount := f.atLeast("unit_amount", 0)
	if !hasAmount && f.err() == nil {
		f.fail(missingParam("unit_amount"))
	}
	interval := f.oneOf("recurring[interval]", "", intervals...)
	if f.has("recurring[interval_count]") || f.has("recurring[usage_type]") {
		if interval == "" && f.err() == nil {
			f.fail(missingParam("recurring[interval]"))
		}
	}
	count, hasCount := f.atLeast("recurring[interval_count]", 1)
	if !hasCount {
		count = 1
	}
	transfer, _ := f.boolean("transfer_lookup_key")
	active, hasActive := f.boolean("active")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	o := originOf(w, r)
	if product == "" {
		now := s.now()
		p := &productRec{StripeProduct: StripeProduct{ID: NewID("prod"), Name: productName, Active: true, Created: now},
			seq: s.nextSeq(), updated: now}
		s.catalog.products[p.ID] = p
		product = p.ID
		s.emitLocked("product.created", p.object(), nil, o)
	} else if _, ok := s.catalog.products[product]; !ok {
		writeError(w, http.StatusNotFound, noSuch("product", "product", product))
		return
	}
	key := f.str("lookup_key")
	if e := s.claimLookupKeyLocked(key, "", transfer, o); e != nil {
		writeError(w, http.StatusBadRequest, *e)
		return
	}
	p := &priceRec{StripePrice: StripePrice{ID: NewID("price"), Product: product, Currency: currency, UnitAmount: amount,
		Interval: interval, LookupKey: key, Nickname: f.str("nickname"), Active: !hasActive || active,
		Metadata: f.metadata("metadata", nil), Created: s.now()}, seq: s.nextSeq()}
	if interval != "" {
		p.IntervalCount = count
	}
	s.catalog.prices[p.ID] = p
	obj := p.object()
	s.emitLocked("price.created", obj, nil, o)
	s.expandLocked(obj, f.expand())
	writeJSON(w, http.StatusOK, obj)
}

// claimLookupKeyLocked makes key free for the price id: an error if
// another price holds it, unless transfer, which takes it from that price
// (a price.updated event).
func (s *Stripe) claimLookupKeyLocked(key, id string, transfer bool, o origin) *apiError {
	if key == "" {
		return nil
	}
	for _, other := range s.catalog.prices {
		if other.LookupKey != key || other.ID == id {
			continue
		}
		if !transfer {
			return &apiError{Type: "invalid_request_error", Param: "lookup_key",
				Message: fmt.Sprintf("A price (%s) already uses the lookup key %q. Send transfer_lookup_key=true to move it to this price.", other.ID, key)}
		}
		old := other.object()
		other.LookupKey = ""
		s.emitChangeLocked("price.updated", old, other.object(), o)
	}
	return nil
}

// GET and POST /v1/prices/{id}
func (s *Stripe) price(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	id := r.PathValue("id")
	active, hasActive := f.boolean("active")
	transfer, _ := f.boolean("transfer_lookup_key")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.catalog.prices[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "price", id))
		return
	}
	if r.Method == http.MethodPost {
		o := originOf(w, r)
		old := p.object()
		if key, ok := f.opt("lookup_key"); ok {
			if e := s.claimLookupKeyLocked(key, p.ID, transfer, o); e != nil {
				writeError(w, http.StatusBadRequest, *e)
				return
			}
			p.LookupKey = key
		}
		if v, ok := f.opt("nickname"); ok {
			p.Nickname = v
		}
		if hasActive {
			p.Active = active
		}
		p.Metadata = f.metadata("metadata", p.Metadata)
		s.emitChangeLocked("price.updated", old, p.object(), o)
	}
	obj := p.object()
	s.expandLocked(obj, f.expand())
	writeJSON(w, http.StatusOK, obj)
}

// GET /v1/prices
func (s *Stripe) listPrices(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	active, hasActive := f.boolean("active")
	keys, hasKeys := f.list("lookup_keys")
	typ := f.oneOf("type", "", "recurring", "one_time")
	if f.answerBad(w) {
		return
	}
	product, currency := f.str("product"), f.str("currency")
	s.mu.Lock()
	defer s.mu.Unlock()
	var ps []*priceRec
	for _, p := range s.catalog.prices {
		switch {
		case hasActive && p.Active != active,
			hasKeys && (p.LookupKey == "" || !slices.Contains(keys, p.LookupKey)),
			product != "" && p.Product != product,
			currency != "" && p.Currency != currency,
			typ == "recurring" && p.Interval == "",
			typ == "one_time" && p.Interval != "":
			continue
		}
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].seq > ps[j].seq })
	ids, objs := make([]string, len(ps)), make([]map[string]any, len(ps))
	for i, p := range ps {
		ids[i], objs[i] = p.ID, p.object()
		s.expandLocked(objs[i], listExpand(f.expand()))
	}
	writeList(w, f, PathPrices, ids, objs)
}
