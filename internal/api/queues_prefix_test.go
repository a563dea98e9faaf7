package api_test

import (
	"net/http"
	"net/url"
	"slices"
	"testing"
)

func TestListQueuesPrefix(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, q := range []string{"a", "mail", "mail/bulk", "mail/eu", "mailer", "mails", "n", "轮询", "轮询/2"} {
		e.putQueue(q, map[string]any{})
	}
	list := func(prefix string, limit string) []string {
		var names []string
		cursor := ""
		for range 100 {
			target := "/v1/queues?prefix=" + url.QueryEscape(prefix) + "&limit=" + limit
			if cursor != "" {
				target += "&cursor=" + url.QueryEscape(cursor)
			}
			var page struct {
				Queues []struct {
					Name string `json:"name"`
				} `json:"queues"`
				NextCursor string `json:"next_cursor"`
			}
			e.must(e.rest(http.MethodGet, target, nil), http.StatusOK, &page)
			for _, q := range page.Queues {
				names = append(names, q.Name)
			}
			if page.NextCursor == "" {
				return names
			}
			cursor = page.NextCursor
		}
		t.Fatal("no end of pages")
		return nil
	}
	for _, tt := range []struct {
		prefix string
		want   []string
	}{
		{"mail/", []string{"mail/bulk", "mail/eu"}},
		{"mail", []string{"mail", "mail/bulk", "mail/eu", "mailer", "mails"}},
		{"轮询", []string{"轮询", "轮询/2"}},
		{"zzz", nil},
		{"", []string{"a", "mail", "mail/bulk", "mail/eu", "mailer", "mails", "n", "轮询", "轮询/2"}},
	} {
		for _, limit := range []string{"1", "2", "100"} {
			if got := list(tt.prefix, limit); !slices.Equal(got, tt.want) {
				t.Errorf("prefix %q limit %s: %q, want %q", tt.prefix, limit, got, tt.want)
			}
		}
	}
	// a cursor before the prefix starts at the prefix
	var page struct {
		Queues []struct {
			Name string `json:"name"`
		} `json:"queues"`
	}
	e.must(e.rest(http.MethodGet, "/v1/queues?prefix=mail/&cursor=a", nil), http.StatusOK, &page)
	if len(page.Queues) != 2 || page.Queues[0].Name != "mail/bulk" {
		t.Fatalf("cursor before the prefix: %+v", page.Queues)
	}
	e.wantError(e.rest(http.MethodGet, "/v1/queues?prefix=%01", nil), http.StatusBadRequest, "bad_request", "prefix")
	e.wantError(e.rest(http.MethodGet, "/v1/queues?name=a", nil), http.StatusBadRequest, "bad_request", "name")
}
