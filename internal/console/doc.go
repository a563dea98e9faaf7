// Package console serves HTQ's browser console: a single-page application
// of embedded static files (HTML, CSS, JavaScript modules; no build chain,
// nothing fetched from elsewhere) that talks to the REST API /v1 with the
// bearer token the operator signs in with.
//
// The handler serves the files under /ui/ and answers index.html for any
// other path below /ui/ (the pages are addressed by the URL fragment, but a
// bookmarked /ui/queues still opens the console). Every answer carries a
// Content-Security-Policy that allows only this origin's scripts and styles
// (no inline script or style, no eval), forbids framing, and sends no
// referrer. The JavaScript builds the page with createElement and
// textContent only, so queue names, URLs, headers and bodies, which are
// whatever API clients sent, are shown as text and never parsed as HTML.
//
// The token lives in the tab's sessionStorage and travels only in the
// Authorization header of the console's fetch() calls: never in a URL, a
// cookie or a log line. The handler itself needs no token (it serves the
// same public files to everyone); /v1 checks the token on every call.
package console
