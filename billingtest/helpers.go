package billingtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"slices"
	"sync/atomic"
)

var idSeq atomic.Uint64
var idPrefix = func() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

// NewID returns a fresh id with the given prefix: prefix + "_" + a random
// part drawn once per process + a counter, so unique within the process and
// unlikely to meet one of another process. The events and the fake make
// their ids (evt_, cs_test_, req_, bps_, cus_ and the portal URLs) with it.
func NewID(prefix string) string {
	return fmt.Sprintf("%s_%s%06d", prefix, idPrefix, idSeq.Add(1))
}

func validURL(raw string) bool {
	u, err := url.Parse(raw)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func cloneMap(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func cloneValues(v url.Values) url.Values {
	if v == nil {
		return nil
	}
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

func cloneCustomer(c *StripeCustomer) StripeCustomer {
	out := *c
	out.Metadata = cloneMap(c.Metadata)
	return out
}

// cloneEach returns a copy of s, each element passed through deepen (which
// copies what the element shares, such as a map).
func cloneEach[T any](s []T, deepen func(T) T) []T {
	out := make([]T, len(s))
	for i, v := range s {
		out[i] = deepen(v)
	}
	return out
}
