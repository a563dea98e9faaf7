package console

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/htq/htq/internal/testcluster"
)

// screenshotDir is where every test leaves a picture of its page, from the
// repository root.
const screenshotDir = "tmp/ui-screenshots"

// step is how long one browser step may take on a loaded CI machine.
const step = 20 * time.Second

// chromiumPath finds the browser: HTQ_CHROMIUM, else chromium on the PATH
// (make chromium installs Debian's).
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HTQ_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on the PATH: run `make chromium` (scripts/ensure-chromium.sh) or set HTQ_CHROMIUM")
	return ""
}

// browser is one headless Chromium with a fresh profile, a tab on the
// console and a record of the JavaScript dialogs (alert, confirm) any page
// opened: the console opens none, so one is a script that should not run.
type browser struct {
	t       *testing.T
	ctx     context.Context
	base    string
	mu      sync.Mutex
	dialogs []string
	errors  []string // uncaught exceptions in the page
}

func newBrowser(t *testing.T, base string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1360, 900),
		// Chromium puts its singleton socket in a directory of its own
		// under TMPDIR and leaves it behind when it is killed: keep that
		// in the test's temporary directory too.
		chromedp.Env("TMPDIR=" + t.TempDir()),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{t: t, ctx: ctx, base: base}
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			msg := ev.ExceptionDetails.Text
			if ex := ev.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
				msg += " " + ex.Description
			}
			b.mu.Lock()
			b.errors = append(b.errors, msg)
			b.mu.Unlock()
		}
	}()
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, ev.Message)
			b.mu.Unlock()
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false})
		}
	}()
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil { // starts the browser
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return b
}

// run runs actions with a deadline and fails the test (with a screenshot)
// on an error.
func (b *browser) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// fail ends the test with a screenshot and the page's text.
func (b *browser) fail(what string, err error) {
	b.t.Helper()
	b.screenshot(b.t.Name() + "-failed")
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	body, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ''`))
	b.mu.Lock()
	errs := append([]string(nil), b.errors...)
	b.mu.Unlock()
	b.t.Fatalf("%s: %v\npage text:\n%s\npage exceptions: %q", what, err, body, errs)
}

// CSS-selector forms of the chromedp actions the tests use.
func waitVisible(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitVisible(chromedp.CSS(sel))
}
func click(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)
}
func sendKeys(sel, v string) chromedp.Action[chromedp.Void] {
	return chromedp.SendKeys(chromedp.CSS(sel), v, chromedp.NodeVisible)
}
func waitGone(sel string) chromedp.Action[chromedp.Void] {
	return chromedp.WaitNotPresent(chromedp.CSS(sel))
}

// screenshot saves the current page as tmp/ui-screenshots/<name>.png.
func (b *browser) screenshot(name string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return
	}
	dir := filepath.Join(repoRoot(b.t), screenshotDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	file := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+".png")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", file)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out)))
}

// open navigates to a console page (a fragment such as "#/queues").
func (b *browser) open(fragment string) {
	b.t.Helper()
	b.run("open "+fragment, chromedp.Navigate(b.base+"/ui/"+fragment))
}

// signIn opens the console and signs in with tok.
func (b *browser) signIn(tok string) {
	b.t.Helper()
	b.open("")
	b.run("sign in",
		waitVisible(`[data-testid=token]`),
		sendKeys(`[data-testid=token]`, tok),
		click(`[data-testid=signin-submit]`),
		waitVisible(`[data-testid=signout]`))
}

// nav switches to a page within the signed-in tab (the token lives in the
// tab's sessionStorage, so a reload keeps it).
func (b *browser) nav(fragment string) {
	b.t.Helper()
	b.run("go to "+fragment, chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](fmt.Sprintf(`location.hash = %q`, fragment))(ctx, t)
		return err
	}))
}

// waitJS polls a JavaScript expression until it is truthy.
func (b *browser) waitJS(what, expr string) {
	b.t.Helper()
	b.run(what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(step-time.Second)))
}

// text returns the text of the first element matching sel.
func (b *browser) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		b.fail("text of "+sel, err)
	}
	return s
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("eval "+expr, err)
	}
	return v
}

// noDialogs fails the test if any page opened a JavaScript dialog or threw
// an uncaught exception.
func (b *browser) noDialogs() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		b.t.Fatalf("a page opened JavaScript dialogs: %q", b.dialogs)
	}
	if len(b.errors) > 0 {
		b.t.Fatalf("uncaught exceptions in the page: %q", b.errors)
	}
}

// routeExists reports whether the API has a route (not 404): routes from
// the console-api work that a server may not have yet. Raw HTTP on purpose:
// it probes any path, including ones the Go client has no method for.
func routeExists(t *testing.T, c *testcluster.Cluster, path string) bool {
	t.Helper()
	return c.REST("GET", path, nil, nil) != 404
}

var errNotYet = errors.New("not yet")

// eventually polls cond until it returns nil or the deadline passes.
func eventually(t *testing.T, what string, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", within, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
