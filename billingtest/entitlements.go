package billingtest

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
)

// StripeFeature is an entitlement feature (entitlements.feature): what a
// product grants, by its lookup key.
type StripeFeature struct {
	// ID is the feature id (feat_...).
	ID string
	// Name is the feature's name. Default: the lookup key.
	Name string
	// LookupKey is the feature's lookup key, unique among features; the
	// billing library stores it as the user's feature. Required.
	LookupKey string
	// Active is false for an archived feature, which entitles no one.
	// [Stripe.AddFeature] makes it true.
	Active bool
	// Metadata is the feature's metadata.
	Metadata map[string]string
}

type featureRec struct {
	StripeFeature
	seq int64
}

// productFeature attaches a feature to a product (product_feature).
type productFeature struct {
	id, feature string
	seq         int64
}

type entitlementState struct {
	features map[string]*featureRec
	attached map[string][]*productFeature // by product id, in attach order
	active   map[string][]string          // customer -> feature ids last known (and announced)
	ids      map[string]string            // customer + " " + feature -> ent_... id
}

// entitledStatuses are the subscription statuses whose products' features
// a customer is entitled to.
var entitledStatuses = []string{"active", "trialing", "past_due"}

// AddFeature creates the feature f without an event and returns it with
// its defaults (a fresh feat_... id, Name the lookup key, Active true). It
// panics if f.LookupKey is empty, a mistake in the test.
func (s *Stripe) AddFeature(f StripeFeature) StripeFeature {
	if f.LookupKey == "" {
		panic("billingtest: AddFeature needs LookupKey")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.ID == "" {
		f.ID = NewID("feat")
	}
	f.Name = orDefault(f.Name, f.LookupKey)
	f.Active = true
	f.Metadata = cloneMap(f.Metadata)
	s.ent.features[f.ID] = &featureRec{StripeFeature: f, seq: s.nextSeq()}
	return f
}

// AttachFeature attaches the feature to the product (which is added to the
// catalog if unknown), as POST /v1/products/{id}/features does, and emits
// an entitlement summary event for each customer whose features change.
// It panics if the feature is unknown, a mistake in the test.
func (s *Stripe) AttachFeature(productID, featureID string) {
	if _, ok := s.Product(productID); !ok {
		s.AddProduct(StripeProduct{ID: productID})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.ent.features[featureID]; !ok {
		panic("billingtest: AttachFeature: unknown feature " + featureID + " (create it with AddFeature)")
	}
	s.attachFeatureLocked(productID, featureID, origin{})
}

func (s *Stripe) attachFeatureLocked(productID, featureID string, o origin) *productFeature {
	for _, pf := range s.ent.attached[productID] {
		if pf.feature == featureID {
			return pf
		}
	}
	pf := &productFeature{id: NewID("prodft"), feature: featureID, seq: s.nextSeq()}
	s.ent.attached[productID] = append(s.ent.attached[productID], pf)
	s.entitlementsChangedLocked("", o)
	return pf
}

func (f *featureRec) object() map[string]any {
	return map[string]any{"id": f.ID, "object": "entitlements.feature", "active": f.Active, "livemode": false,
		"lookup_key": f.LookupKey, "metadata": orEmpty(f.Metadata), "name": f.Name}
}

func (s *Stripe) productFeatureObjectLocked(pf *productFeature) map[string]any {
	var feat any = pf.feature
	if f, ok := s.ent.features[pf.feature]; ok {
		feat = f.object()
	}
	return map[string]any{"id": pf.id, "object": "product_feature", "entitlement_feature": feat, "livemode": false}
}

// activeFeaturesLocked returns the ids of the active features of the
// products of customer's active, trialing and past_due subscriptions:
// oldest subscription first, each product's features in attach order,
// each feature once.
func (s *Stripe) activeFeaturesLocked(customer string) []string {
	var subs []*SubscriptionSpec
	for _, sub := range s.subs {
		if sub.Customer == customer && slices.Contains(entitledStatuses, sub.Status) {
			subs = append(subs, sub)
		}
	}
	sort.Slice(subs, func(i, j int) bool {
		if !subs[i].Created.Equal(subs[j].Created) {
			return subs[i].Created.Before(subs[j].Created)
		}
		return subs[i].ID < subs[j].ID
	})
	out := []string{}
	for _, sub := range subs {
		for _, pf := range s.ent.attached[sub.ProductID] {
			if f, ok := s.ent.features[pf.feature]; ok && f.Active && !slices.Contains(out, pf.feature) {
				out = append(out, pf.feature)
			}
		}
	}
	return out
}

// activeListLocked renders customer's active entitlements of the feature
// ids as a Stripe list.
func (s *Stripe) activeListLocked(customer string, feats []string) map[string]any {
	data := make([]any, 0, len(feats))
	for _, id := range feats {
		data = append(data, s.activeEntitlementLocked(customer, id))
	}
	return map[string]any{"object": "list", "data": data, "has_more": false, "url": PathActiveEntitlements}
}

func (s *Stripe) activeEntitlementLocked(customer, feature string) map[string]any {
	key := customer + " " + feature
	id, ok := s.ent.ids[key]
	if !ok {
		id = NewID("ent")
		s.ent.ids[key] = id
	}
	lookup := ""
	if f, ok := s.ent.features[feature]; ok {
		lookup = f.LookupKey
	}
	return map[string]any{"id": id, "object": "entitlements.active_entitlement", "feature": feature,
		"livemode": false, "lookup_key": lookup}
}

// entitlementsChangedLocked recomputes the active features of customer
// (every customer's when empty) and emits
// entitlements.active_entitlement_summary.updated for each whose set
// changed.
func (s *Stripe) entitlementsChangedLocked(customer string, o origin) {
	customers := []string{customer}
	if customer == "" {
		customers = customers[:0]
		for id := range s.customers {
			customers = append(customers, id)
		}
		sort.Strings(customers)
	}
	for _, c := range customers {
		now := s.activeFeaturesLocked(c)
		before := s.ent.active[c]
		if slices.Equal(now, before) || (len(now) == 0 && len(before) == 0) {
			continue
		}
		s.ent.active[c] = now
		summary := func(feats []string) map[string]any {
			return map[string]any{"object": "entitlements.active_entitlement_summary", "customer": c, "livemode": false,
				"entitlements": s.activeListLocked(c, feats)}
		}
		s.emitChangeLocked("entitlements.active_entitlement_summary.updated", summary(before), summary(now), o)
	}
}

// POST /v1/entitlements/features
func (s *Stripe) createFeature(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	name, key := f.require("name"), f.require("lookup_key")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, other := range s.ent.features {
		if other.LookupKey == key {
			writeError(w, http.StatusBadRequest, apiError{Type: "invalid_request_error", Param: "lookup_key",
				Message: fmt.Sprintf("A feature (%s) already uses the lookup key %q; lookup keys are unique.", other.ID, key)})
			return
		}
	}
	feat := &featureRec{StripeFeature: StripeFeature{ID: NewID("feat"), Name: name, LookupKey: key, Active: true,
		Metadata: f.metadata("metadata", nil)}, seq: s.nextSeq()}
	s.ent.features[feat.ID] = feat
	writeJSON(w, http.StatusOK, feat.object())
}

// GET and POST /v1/entitlements/features/{id}
func (s *Stripe) feature(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f := newForm(r)
	active, hasActive := f.boolean("active")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	feat, ok := s.ent.features[id]
	if !ok {
		writeError(w, http.StatusNotFound, noSuch("id", "feature", id))
		return
	}
	if r.Method == http.MethodPost {
		if v, ok := f.opt("name"); ok && v != "" {
			feat.Name = v
		}
		feat.Metadata = f.metadata("metadata", feat.Metadata)
		if hasActive && active != feat.Active {
			feat.Active = active
			s.entitlementsChangedLocked("", originOf(w, r))
		}
	}
	writeJSON(w, http.StatusOK, feat.object())
}

// GET /v1/entitlements/features
func (s *Stripe) listFeatures(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	archived, hasArchived := f.boolean("archived")
	key := f.str("lookup_key")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var fs []*featureRec
	for _, feat := range s.ent.features {
		if (hasArchived && feat.Active == archived) || (key != "" && feat.LookupKey != key) {
			continue
		}
		fs = append(fs, feat)
	}
	sort.Slice(fs, func(i, j int) bool { return fs[i].seq > fs[j].seq })
	ids, objs := make([]string, len(fs)), make([]map[string]any, len(fs))
	for i, feat := range fs {
		ids[i], objs[i] = feat.ID, feat.object()
	}
	writeList(w, f, PathFeatures, ids, objs)
}

// POST /v1/products/{id}/features
func (s *Stripe) attachProductFeature(w http.ResponseWriter, r *http.Request) {
	product := r.PathValue("id")
	f := newForm(r)
	feat := f.require("entitlement_feature")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.catalog.products[product]; !ok {
		writeError(w, http.StatusNotFound, noSuch("product", "product", product))
		return
	}
	if _, ok := s.ent.features[feat]; !ok {
		writeError(w, http.StatusNotFound, noSuch("entitlement_feature", "feature", feat))
		return
	}
	pf := s.attachFeatureLocked(product, feat, originOf(w, r))
	writeJSON(w, http.StatusOK, s.productFeatureObjectLocked(pf))
}

// GET /v1/products/{id}/features
func (s *Stripe) listProductFeatures(w http.ResponseWriter, r *http.Request) {
	product := r.PathValue("id")
	f := newForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.catalog.products[product]; !ok {
		writeError(w, http.StatusNotFound, noSuch("product", "product", product))
		return
	}
	pfs := slices.Clone(s.ent.attached[product])
	slices.Reverse(pfs)
	ids, objs := make([]string, len(pfs)), make([]map[string]any, len(pfs))
	for i, pf := range pfs {
		ids[i], objs[i] = pf.id, s.productFeatureObjectLocked(pf)
	}
	writeList(w, f, PathProducts+"/"+product+"/features", ids, objs)
}

// GET and DELETE /v1/products/{id}/features/{pf}
func (s *Stripe) productFeature(w http.ResponseWriter, r *http.Request) {
	product, id := r.PathValue("id"), r.PathValue("pf")
	s.mu.Lock()
	defer s.mu.Unlock()
	pfs := s.ent.attached[product]
	i := slices.IndexFunc(pfs, func(pf *productFeature) bool { return pf.id == id })
	if i < 0 {
		writeError(w, http.StatusNotFound, noSuch("id", "product_feature", id))
		return
	}
	pf := pfs[i]
	if r.Method == http.MethodDelete {
		s.ent.attached[product] = slices.Delete(slices.Clone(pfs), i, i+1)
		s.entitlementsChangedLocked("", originOf(w, r))
		writeJSON(w, http.StatusOK, map[string]any{"id": pf.id, "object": "product_feature", "deleted": true})
		return
	}
	writeJSON(w, http.StatusOK, s.productFeatureObjectLocked(pf))
}

// GET /v1/entitlements/active_entitlements
func (s *Stripe) listActiveEntitlements(w http.ResponseWriter, r *http.Request) {
	f := newForm(r)
	cus := f.require("customer")
	if f.answerBad(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.customers[cus]; !ok {
		writeError(w, http.StatusNotFound, noSuch("customer", "customer", cus))
		return
	}
	feats := s.activeFeaturesLocked(cus)
	ids, objs := make([]string, len(feats)), make([]map[string]any, len(feats))
	for i, id := range feats {
		objs[i] = s.activeEntitlementLocked(cus, id)
		ids[i] = objs[i]["id"].(string)
	}
	writeList(w, f, PathActiveEntitlements, ids, objs)
}

// GET /v1/entitlements/active_entitlements/{id}
func (s *Stripe) getActiveEntitlement(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, eid := range s.ent.ids {
		if eid != id {
			continue
		}
		var cus, feat string
		fmt.Sscan(key, &cus, &feat)
		if slices.Contains(s.activeFeaturesLocked(cus), feat) {
			writeJSON(w, http.StatusOK, s.activeEntitlementLocked(cus, feat))
			return
		}
	}
	writeError(w, http.StatusNotFound, noSuch("id", "active_entitlement", id))
}
