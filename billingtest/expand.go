package billingtest

import "strings"

// listExpand turns a list's expand paths (data.customer) into the paths of
// each of its objects (customer).
func listExpand(paths []string) []string {
	var out []string
	for _, p := range paths {
		if rest, ok := strings.CutPrefix(p, "data."); ok {
			out = append(out, rest)
		}
	}
	return out
}

// expandLocked replaces the ids at the given dotted paths of obj (a
// rendered object; lists are walked through) with the objects they name,
// as Stripe's expand[] does. An id the emulator does not hold stays an id.
func (s *Stripe) expandLocked(obj map[string]any, paths []string) {
	for _, p := range paths {
		s.expandPath(obj, strings.Split(p, "."))
	}
}

func (s *Stripe) expandPath(obj map[string]any, path []string) {
	key := path[0]
	v, ok := obj[key]
	if !ok {
		return
	}
	if len(path) == 1 {
		if id, isID := v.(string); isID {
			if o := s.lookupLocked(key, id); o != nil {
				obj[key] = o
			}
		}
		return
	}
	switch v := v.(type) {
	case map[string]any:
		s.expandPath(v, path[1:])
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				s.expandPath(m, path[1:])
			}
		}
	}
}

// lookupLocked renders the object that the field key names by id, or nil.
func (s *Stripe) lookupLocked(key, id string) map[string]any {
	switch key {
	case "customer":
		if c, ok := s.customers[id]; ok {
			return customerJSON(c)
		}
	case "product":
		if p, ok := s.catalog.products[id]; ok {
			return p.object()
		}
	case "price":
		if p, ok := s.catalog.prices[id]; ok {
			return p.object()
		}
	case "latest_invoice", "invoice":
		if inv, ok := s.billing.invoices[id]; ok {
			return s.invoiceObjectLocked(inv)
		}
	case "default_payment_method", "payment_method":
		if m, ok := s.billing.methods[id]; ok {
			return m.object()
		}
	case "subscription":
		if sub, ok := s.subs[id]; ok {
			return sub.object()
		}
	case "configuration":
		if c, ok := s.portal.configs[id]; ok {
			return c.object()
		}
	}
	return nil
}
