// Package client is a typed Go client for HTQ's REST API (v1): one method per
// route, context first, errors that carry the API's code and message.
//
//	c, err := client.New("http://127.0.0.1:5999", client.WithToken(token))
//	created, err := c.CreateTask(ctx, "orders", client.TaskRequest{URL: "https://shop.example/hook"})
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Code == client.CodeQueueNotFound { … }
//
// Retries: a call that is safe to repeat (GET, PUT, DELETE, and a create
// that carries an idempotency key) is tried again, with exponential backoff
// and jitter, when the API answers 429 or 503 or the connection fails,
// honouring Retry-After; CreateTask and CreateTasks give every create a
// random idempotency key unless the caller set one (or WithoutIdempotencyKeys
// turned that off), so a retried create never makes a second task. Other
// calls are tried once.
package client

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client calls one HTQ API. It is safe for concurrent use.
type Client struct {
	base    *url.URL
	token   string
	http    *http.Client
	retries int
	minWait time.Duration
	maxWait time.Duration
	agent   string
	noKeys  bool // creates without a caller's key go without one
}

// Option configures a Client.
type Option func(*Client) error

// WithToken sets the bearer token.
func WithToken(token string) Option {
	return func(c *Client) error {
		if strings.ContainsAny(token, "\r\n") {
			return errors.New("client: the token contains a line break")
		}
		c.token = token
		return nil
	}
}

// WithHTTPClient sets the HTTP client (its Timeout bounds each attempt).
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) error {
		if h == nil {
			return errors.New("client: nil http.Client")
		}
		c.http = h
		return nil
	}
}

// WithRetries sets how many times a repeatable call is tried again (default
// 4; 0 turns retries off) and the bounds of the wait between tries (default
// 100 ms to 5 s; a Retry-After answer header wins, up to a minute).
func WithRetries(n int, minWait, maxWait time.Duration) Option {
	return func(c *Client) error {
		if n < 0 || minWait < 0 || maxWait < minWait {
			return fmt.Errorf("client: bad retry settings: %d tries, %v to %v", n, minWait, maxWait)
		}
		c.retries, c.minWait, c.maxWait = n, minWait, maxWait
		return nil
	}
}

// WithoutIdempotencyKeys makes CreateTask and CreateTasks send a task the
// caller gave no IdempotencyKey without one, instead of a random key: the
// API then stores no key for it, which bulk loaders and load generators may
// want. Such a create is tried once, since a repeat after a lost answer
// could add the task twice.
func WithoutIdempotencyKeys() Option {
	return func(c *Client) error { c.noKeys = true; return nil }
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(c *Client) error { c.agent = ua; return nil }
}

// New returns a client of the API at baseURL (scheme and host, e.g.
// "http://127.0.0.1:5999").
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("client: base URL %q: %w", baseURL, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("client: base URL %q: want http:// or https:// and a host", baseURL)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("client: base URL %q: no query or fragment", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	c := &Client{
		base: u, http: &http.Client{Timeout: 30 * time.Second},
		retries: 4, minWait: 100 * time.Millisecond, maxWait: 5 * time.Second,
		agent: "htq-go-client",
	}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// Error codes the API answers with (Error.Code); docs/api.md lists them all.
const (
	CodeUnauthorized     = "unauthorized"
	CodeBadRequest       = "bad_request"
	CodeInvalidJSON      = "invalid_json"
	CodeValidation       = "validation_failed"
	CodeQueueNotFound    = "queue_not_found"
	CodeTaskNotFound     = "task_not_found"
	CodeTaskFinished     = "task_finished"
	CodeTaskNotDead      = "task_not_dead"
	CodeQueueFull        = "queue_full"
	CodeUnavailable      = "unavailable"
	codeUnexpectedAnswer = "unexpected_answer"
)

// Error is an answer of the API that is not a success.
type Error struct {
	Status     int           // HTTP status
	Code       string        // the API's error code, e.g. "queue_not_found"
	Message    string        // the API's message, for people
	RetryAfter time.Duration // from a Retry-After header, 0 when absent
}

func (e *Error) Error() string {
	return fmt.Sprintf("htq: %d %s: %s", e.Status, e.Code, e.Message)
}

// IsNotFound reports whether err says a queue or task does not exist.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// request is one call.
type request struct {
	method     string
	path       string // escaped, below the base URL
	query      url.Values
	body       any
	idemKey    string
	repeatable bool
	want       []int // success statuses
}

// do runs a call, retrying it when it is repeatable, and decodes a JSON
// answer into out (when out is not nil). It returns the status.
func (c *Client) do(ctx context.Context, r request, out any) (int, error) {
	var payload []byte
	if r.body != nil {
		var err error
		if payload, err = json.Marshal(r.body); err != nil {
			return 0, fmt.Errorf("client: encode request: %w", err)
		}
	}
	u := *c.base
	u.RawPath = c.base.Path + r.path
	u.Path, _ = url.PathUnescape(u.RawPath)
	u.RawQuery = r.query.Encode()
	tries := 1
	if r.repeatable {
		tries += c.retries
	}
	var lastErr error
	for attempt := range tries {
		if attempt > 0 {
			if err := sleep(ctx, c.wait(attempt, lastErr)); err != nil {
				return 0, fmt.Errorf("%w (last: %w)", err, lastErr)
			}
		}
		status, retry, err := c.once(ctx, r, &u, payload, out)
		if err == nil {
			return status, nil
		}
		if !retry || ctx.Err() != nil {
			return status, err
		}
		lastErr = err
	}
	return 0, lastErr
}

// once makes one attempt; retry says whether another may help.
func (c *Client) once(ctx context.Context, r request, u *url.URL, payload []byte, out any) (status int, retry bool, err error) {
	var body io.Reader
	if payload != nil {
		body = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u.String(), body)
	if err != nil {
		return 0, false, fmt.Errorf("client: %w", err)
	}
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.agent)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if r.idemKey != "" {
		req.Header.Set("Idempotency-Key", r.idemKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, true, fmt.Errorf("client: %s %s: %w", r.method, r.path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, true, fmt.Errorf("client: %s %s: read answer: %w", r.method, r.path, err)
	}
	for _, w := range r.want {
		if resp.StatusCode != w {
			continue
		}
		if out != nil && len(data) > 0 {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, false, &Error{Status: resp.StatusCode, Code: codeUnexpectedAnswer,
					Message: fmt.Sprintf("%s %s: cannot decode the answer: %v", r.method, r.path, err)}
			}
		}
		return resp.StatusCode, false, nil
	}
	retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable
	return resp.StatusCode, retry, errorOf(resp, data)
}

// errorOf is the *Error of an answer that is not a success, with the API's
// code and message when its body has them.
func errorOf(resp *http.Response, data []byte) *Error {
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	var env struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &env) == nil && env.Error.Code != "" {
		e.Code, e.Message = env.Error.Code, env.Error.Message
	} else {
		e.Code, e.Message = codeUnexpectedAnswer, strings.TrimSpace(string(clip(data, 200)))
	}
	return e
}

// wait is the pause before attempt n (n ≥ 1): Retry-After when the API gave
// one, else exponential with full jitter between minWait and maxWait.
func (c *Client) wait(n int, last error) time.Duration {
	var e *Error
	if errors.As(last, &e) && e.RetryAfter > 0 {
		return min(e.RetryAfter, time.Minute)
	}
	hi := c.minWait << min(n-1, 20)
	if hi > c.maxWait || hi <= 0 {
		hi = c.maxWait
	}
	if hi <= c.minWait {
		return c.minWait
	}
	return c.minWait + rand.N(hi-c.minWait+1) //nolint:gosec // jitter, not a secret
}

func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func clip(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}

// newKey returns a random idempotency key.
func newKey() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return "go-" + hex.EncodeToString(b[:])
}

// seg escapes one path segment (a queue name may hold '/', '%', spaces, …).
func seg(s string) string { return url.PathEscape(s) }
