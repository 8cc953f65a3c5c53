package billingtest

import (
	"fmt"
	"net/http"
	"slices"
)

// listPage is one page of a Stripe list: the objects newest first, as
// Stripe lists, cut by limit (1 to 100, default 10), starting_after (the
// objects after that id) and ending_before (the objects just before it).
// ids are the objects' ids, in the same order as objs.
func listPage(f *form, url string, ids []string, objs []map[string]any) (map[string]any, *apiError) {
	limit := int64(10)
	if n, ok := f.integer("limit"); ok {
		if n < 1 || n > 100 {
			f.invalid("limit", "parameter_invalid_integer", fmt.Sprintf("Invalid limit: %d. limit must be between 1 and 100.", n))
		}
		limit = n
	}
	after, before := f.str("starting_after"), f.str("ending_before")
	if e := f.err(); e != nil {
		return nil, e
	}
	lo, hi := 0, len(ids)
	switch {
	case after != "":
		i := slices.Index(ids, after)
		if i < 0 {
			return nil, &apiError{Type: "invalid_request_error", Code: "resource_missing", Param: "starting_after",
				Message: fmt.Sprintf("No such object: '%s'. starting_after must be the id of an object in this list.", after)}
		}
		lo = i + 1
	case before != "":
		i := slices.Index(ids, before)
		if i < 0 {
			return nil, &apiError{Type: "invalid_request_error", Code: "resource_missing", Param: "ending_before",
				Message: fmt.Sprintf("No such object: '%s'. ending_before must be the id of an object in this list.", before)}
		}
		hi = i
	}
	more := false
	if int64(hi-lo) > limit {
		more = true
		if before != "" {
			lo = hi - int(limit) // the objects just before ending_before
		} else {
			hi = lo + int(limit)
		}
	}
	data := make([]any, 0, hi-lo)
	for _, o := range objs[lo:hi] {
		data = append(data, o)
	}
	return map[string]any{"object": "list", "data": data, "has_more": more, "url": url}, nil
}

// writeList answers a list of objects with [listPage].
func writeList(w http.ResponseWriter, f *form, url string, ids []string, objs []map[string]any) {
	page, e := listPage(f, url, ids, objs)
	if e != nil {
		status := http.StatusBadRequest
		if e.Code == "resource_missing" {
			status = http.StatusNotFound
		}
		writeError(w, status, *e)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
