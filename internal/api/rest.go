package api

// rest.go: what several REST routes share: page and filter parameters,
// times in answers.

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/store"
	"github.com/htq/htq/internal/task"
)

// Pagination limits.
const (
	defaultPage = 100
	maxPage     = 1000
)

// timePtr returns t in UTC for an answer, nil when t is zero or outside
// what JSON can hold (years 0 to 9999): such a time can only have been
// stored before requests were checked with task.CheckDue, and it must not
// make every answer about its task fail.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() || t.UTC().Year() > 9999 || t.UTC().Year() < 0 {
		return nil
	}
	u := t.UTC()
	return &u
}

func pageParams(c echo.Context) (string, int, error) {
	limit := defaultPage
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPage {
			return "", 0, apiErr(http.StatusBadRequest, CodeBadRequest, "limit: want 1 to %d", maxPage)
		}
		limit = n
	}
	return c.QueryParam("cursor"), limit, nil
}

// onlyParams refuses a query parameter other than the given ones, so that
// a misspelt filter is an error instead of being ignored.
func onlyParams(c echo.Context, allowed ...string) error {
	for k := range c.QueryParams() {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return apiErr(http.StatusBadRequest, CodeBadRequest, "%s: unknown query parameter: this route takes none", clip(k))
			}
			return apiErr(http.StatusBadRequest, CodeBadRequest, "%s: unknown query parameter: want one of %s", clip(k), strings.Join(allowed, ", "))
		}
	}
	return nil
}

// taskFilter reads the search parameters q, code, since and until of the
// query string.
func taskFilter(c echo.Context) (store.TaskFilter, error) {
	return parseFilter(filterInput{Q: c.QueryParam("q"), Code: c.QueryParam("code"), Since: c.QueryParam("since"), Until: c.QueryParam("until")},
		"", http.StatusBadRequest, CodeBadRequest)
}

// filterInput is a search filter as a client wrote it.
type filterInput struct {
	Q, Code, Since, Until string
}

// parseFilter checks a filter; errors name the field (prefix + name) and
// have the given status and code.
func parseFilter(in filterInput, prefix string, status int, code string) (store.TaskFilter, error) {
	var f store.TaskFilter
	if in.Q != "" {
		if _, err := task.IDPartition(in.Q); err == nil {
			f.ID = in.Q
		} else {
			f.URL = in.Q
		}
	}
	if v := in.Code; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 100 || n > 599 {
			return f, apiErr(status, code, "%scode: %q: want an HTTP status, 100 to 599", prefix, clip(v))
		}
		f.Code = n
	}
	for _, p := range []struct {
		name string
		v    string
		t    *time.Time
	}{{"since", in.Since, &f.Since}, {"until", in.Until, &f.Until}} {
		if p.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, p.v)
		if err != nil || t.Year() < 1970 || t.Year() > 9999 {
			return f, apiErr(status, code, "%s%s: %q: want an RFC 3339 time between 1970 and 9999, such as 2026-03-04T05:06:07Z", prefix, p.name, clip(p.v))
		}
		*p.t = t
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Since.After(f.Until) {
		return f, apiErr(status, code, "%ssince: %s is after %suntil: %s", prefix, f.Since.Format(time.RFC3339Nano), prefix, f.Until.Format(time.RFC3339Nano))
	}
	return f, nil
}
