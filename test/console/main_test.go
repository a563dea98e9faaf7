// Package console tests the browser console end to end: the real htq-api
// (serving /ui/ and /v1), a dispatcher, a scheduler and a private
// redis-server, driven through a real headless Chromium with chromedp. Each
// test saves a screenshot of its page to tmp/ui-screenshots/<test>.png
// (docs/console.md shows them).
package console

import (
	"testing"

	"github.com/htq/htq/internal/testcluster"
)

func TestMain(m *testing.M) { testcluster.Main(m) }
