// Package deliver makes the HTTP call of a task: it builds the request from
// the task's spec (method, headers, raw body or form fields; GET and HEAD
// without a body), adds HTQ's headers, sends it over a shared keep-alive
// pool with the task's timeout, and reads a bounded prefix of the answer.
package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/htq/htq/internal/task"
)

// Headers HTQ sends with every call.
const (
	HeaderTaskID   = "X-HTQ-Task-Id"
	HeaderQueue    = "X-HTQ-Queue"
	HeaderAttempt  = "X-HTQ-Attempt"
	HeaderSequence = "X-HTQ-Sequence"
)

// Defaults of the options without a configuration key, and bounds.
const (
	// DefaultMaxIdleConnsPerHost is Options.MaxIdleConnsPerHost when 0.
	DefaultMaxIdleConnsPerHost = 64
	// DefaultDialTimeout is Options.DialTimeout when 0.
	DefaultDialTimeout = 10 * time.Second
	// drainLimit is how much of a longer answer is read and thrown away so
	// the connection can be reused; beyond it the connection is closed.
	drainLimit   = 256 << 10
	maxRedirects = 5
)

// Options configure a Client.
type Options struct {
	UserAgent string
	// MaxResponseBytes is the body prefix kept (for done/reset and the
	// attempt history): at least 1 (dispatcher.max_response_bytes).
	MaxResponseBytes    int
	MaxIdleConnsPerHost int           // keep-alive connections kept per target host (0: DefaultMaxIdleConnsPerHost)
	DialTimeout         time.Duration // 0: DefaultDialTimeout
	Guard               *Guard        // nil: every address may be dialled
	Signer              *Signer       // nil: calls are not signed
}

// Client sends calls. It is safe for concurrent use.
type Client struct {
	http *http.Client
	opts Options
}

// ErrOptions wraps every option New refuses.
var ErrOptions = errors.New("invalid client options")

// New returns a client with its own connection pool, or an error naming an
// option it cannot use.
func New(o Options) (*Client, error) {
	switch {
	case o.MaxResponseBytes < 1:
		return nil, fmt.Errorf("%w: MaxResponseBytes %d: want at least 1", ErrOptions, o.MaxResponseBytes)
	case o.MaxIdleConnsPerHost < 0:
		return nil, fmt.Errorf("%w: MaxIdleConnsPerHost %d: want 0 (the default) or more", ErrOptions, o.MaxIdleConnsPerHost)
	case o.DialTimeout < 0:
		return nil, fmt.Errorf("%w: DialTimeout %v: want 0 (the default) or more", ErrOptions, o.DialTimeout)
	}
	if o.MaxIdleConnsPerHost == 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	if o.Guard != nil {
		dialer.Control = o.Guard.control
	}
	tr := &http.Transport{
		// No proxy from the environment: every call goes straight to its target.
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   o.MaxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &Client{
		opts: o,
		http: &http.Client{Transport: tr, CheckRedirect: checkRedirect},
	}, nil
}

// checkRedirect follows redirects of GET and HEAD calls (up to 5); any other
// method's 3xx answer is returned as is and counts as a permanent failure,
// since replaying a POST elsewhere is not what its sender asked for.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) > maxRedirects { // via holds the first request too
		return errTooManyRedirects
	}
	if m := via[0].Method; m != http.MethodGet && m != http.MethodHead {
		return http.ErrUseLastResponse
	}
	return nil
}

// CloseIdle closes the pool's idle connections.
func (c *Client) CloseIdle() { c.http.CloseIdleConnections() }

// Call is one call to make.
type Call struct {
	TaskID  string
	Queue   string
	Attempt int
	Seq     int64
	Spec    *task.Spec
	Timeout time.Duration
	// FollowAllRedirects follows redirects of every method, as the
	// original (node-fetch) did for the legacy protocol's queues:
	// 301/302/303 after a POST become a GET without body, 307/308 keep the
	// method and body, at most 5 hops. Without it only GET and HEAD follow.
	FollowAllRedirects bool
}

// ErrKind classifies a failed call that got no HTTP answer.
type ErrKind int

// Error kinds. A request HTQ cannot even build is permanent; the rest are
// worth retrying, except a cancellation (the dispatcher is shutting down).
const (
	ErrNone ErrKind = iota
	ErrTimeout
	ErrConnection
	ErrRequest
	ErrCancelled
	ErrEgress
)

// Result is the outcome of a call.
type Result struct {
	Status  int
	Header  http.Header
	Body    []byte // up to MaxResponseBytes of the answer
	Latency time.Duration
	Err     error
	Kind    ErrKind
	// Redirects lists the hops followed, "<status> <location>" each.
	Redirects []string
}

// Do makes the call. It never panics on a strange spec or answer.
func (c *Client) Do(ctx context.Context, call *Call) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, call.Timeout)
	defer cancel()
	req, err := c.build(ctx, call)
	if err != nil {
		return Result{Err: err, Kind: ErrRequest, Latency: time.Since(start)}
	}
	hc, hops := c.http, []string(nil)
	if call.FollowAllRedirects {
		// a copy with its own CheckRedirect: the transport (and so the
		// egress guard, on every hop's connection) is shared
		follow := *c.http
		follow.CheckRedirect = func(next *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects {
				return errTooManyRedirects
			}
			if next.Response != nil {
				hops = append(hops, strconv.Itoa(next.Response.StatusCode)+" "+next.URL.Redacted())
			}
			return nil
		}
		hc = &follow
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Result{Err: err, Kind: classify(ctx, err), Latency: time.Since(start), Redirects: hops}
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, int64(c.opts.MaxResponseBytes)))
	if readErr == nil {
		// Keep the connection when the rest of a long answer is short enough.
		_, _ = io.CopyN(io.Discard, resp.Body, drainLimit)
	}
	_ = resp.Body.Close()
	r := Result{Status: resp.StatusCode, Header: resp.Header, Body: body, Latency: time.Since(start), Redirects: hops}
	if readErr != nil {
		// The status line and headers arrived; the body did not (a reset or
		// the timeout). The answer is incomplete, so the call failed.
		r.Err, r.Kind = fmt.Errorf("read answer: %w", readErr), classify(ctx, readErr)
	}
	return r
}

func classify(ctx context.Context, err error) ErrKind {
	var ne net.Error
	switch {
	case errors.Is(err, ErrEgressDenied):
		return ErrEgress
	case errors.Is(err, errTooManyRedirects):
		return ErrRequest
	case errors.Is(ctx.Err(), context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return ErrTimeout
	case errors.Is(err, context.Canceled):
		return ErrCancelled
	case errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	default:
		return ErrConnection
	}
}

// errTooManyRedirects ends a redirect loop; trying again would loop again,
// so it is a permanent failure.
var errTooManyRedirects = fmt.Errorf("stopped after %d redirects", maxRedirects)

// ErrEgressDenied reports a target address the egress policy forbids.
var ErrEgressDenied = errors.New("egress denied")

func (c *Client) build(ctx context.Context, call *Call) (*http.Request, error) {
	s := call.Spec
	var payload []byte
	contentType := ""
	if !task.NoBodyMethod(s.Method) {
		switch s.BodyKind {
		case task.BodyRaw:
			payload = s.RawBody()
		case task.BodyMultipart:
			var buf bytes.Buffer
			w := multipart.NewWriter(&buf)
			for _, f := range s.Form {
				if err := w.WriteField(f.Name, f.Value); err != nil {
					return nil, fmt.Errorf("build form: %w", err)
				}
			}
			if err := w.Close(); err != nil {
				return nil, fmt.Errorf("build form: %w", err)
			}
			payload, contentType = buf.Bytes(), w.FormDataContentType()
		case task.BodyURLEncoded:
			var buf bytes.Buffer
			for i, f := range s.Form {
				if i > 0 {
					buf.WriteByte('&')
				}
				buf.WriteString(url.QueryEscape(f.Name))
				buf.WriteByte('=')
				buf.WriteString(url.QueryEscape(f.Value))
			}
			payload, contentType = buf.Bytes(), "application/x-www-form-urlencoded"
		}
	}
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, s.Method, s.URL, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	for _, h := range s.Header {
		if strings.EqualFold(h.Name, "Host") {
			// sent as given (name-based virtual hosts), as the original
			// did; net/http ignores a Host in req.Header. The connection
			// still goes to the URL's address, which the egress guard
			// judges when it is dialled.
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	dropHopByHop(req.Header)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if req.Header.Get("User-Agent") == "" && c.opts.UserAgent != "" {
		req.Header.Set("User-Agent", c.opts.UserAgent)
	}
	req.Header.Set(HeaderTaskID, call.TaskID)
	req.Header.Set(HeaderQueue, HeaderSafe(call.Queue))
	req.Header.Set(HeaderAttempt, strconv.Itoa(call.Attempt))
	req.Header.Set(HeaderSequence, strconv.FormatInt(call.Seq, 10))
	if c.opts.Signer != nil {
		// The message id is the task id: it stays the same across retries,
		// so a receiver can deduplicate; X-HTQ-Sequence tells calls apart.
		ts, sig := c.opts.Signer.Sign(call.TaskID, time.Now(), payload)
		req.Header.Set(HeaderWebhookID, call.TaskID)
		req.Header.Set(HeaderWebhookTimestamp, ts)
		req.Header.Set(HeaderWebhookSignature, sig)
	}
	return req, nil
}

// hopByHop are the headers that describe one connection (RFC 9110 section
// 7.6.1), not the request; Proxy-* headers are dropped as well.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade"}

// dropHopByHop removes from a task's headers those it has no business
// setting: the hop-by-hop ones, the names its Connection header lists, and
// every Proxy-* header (Proxy-Authorization would be a proxy's
// credentials). HTQ's transport manages its own connections; an Upgrade
// or a Connection header would also make an HTTP/2 call fail.
func dropHopByHop(h http.Header) {
	for _, v := range h.Values("Connection") {
		for name := range strings.SplitSeq(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopByHop {
		h.Del(name)
	}
	for name := range h {
		if len(name) > 6 && strings.EqualFold(name[:6], "Proxy-") {
			delete(h, name)
		}
	}
}

// HeaderSafe returns s as is when it is printable ASCII without '%', else
// percent-encoded (queue names may be any UTF-8), so a target can always
// percent-decode the header to get the name back.
func HeaderSafe(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] >= 0x7f || s[i] == '%' {
			if utf8.ValidString(s) {
				return url.PathEscape(s)
			}
			return url.PathEscape(string([]rune(s)))
		}
	}
	return s
}
