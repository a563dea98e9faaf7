package migrate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrHTQ reports that HTQ refused a request or could not be reached.
var ErrHTQ = errors.New("htq")

// Client calls HTQ's REST API.
type Client struct {
	base  *url.URL
	token string
	hc    *http.Client
}

// NewClient checks the base URL (http or https with a host) and returns a
// client; hc nil means http.DefaultClient.
func NewClient(base, token string, hc *http.Client) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("HTQ URL %q: want http(s)://host[:port] (--url or HTQ_URL)", base)
	}
	if token == "" {
		return nil, errors.New("no HTQ token: set --token or HTQ_TOKEN")
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: u, token: token, hc: hc}, nil
}

type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// do sends a JSON request and decodes a 2xx answer into out; it returns the
// status, and an ErrHTQ error for any other.
func (c *Client) do(ctx context.Context, method, path string, in, out any) (int, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base.String()+path, body)
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%w: cannot reach HTQ at %s: %w", ErrHTQ, c.base, err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("%w: %s %s: read the answer: %w", ErrHTQ, method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var ae apiError
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &ae) == nil && ae.Error.Message != "" {
			msg = ae.Error.Code + ": " + ae.Error.Message
		}
		return resp.StatusCode, fmt.Errorf("%w: %s %s: HTTP %d: %s", ErrHTQ, method, path, resp.StatusCode, clip(msg))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, fmt.Errorf("%w: %s %s: unexpected answer %q: %w", ErrHTQ, method, path, clip(string(b)), err)
		}
	}
	return resp.StatusCode, nil
}

// Check asks HTQ for one queue: it fails when HTQ cannot be reached or
// refuses the token, before anything is moved.
func (c *Client) Check(ctx context.Context) error {
	status, err := c.do(ctx, http.MethodGet, "/v1/queues?limit=1", nil, nil)
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return fmt.Errorf("HTQ at %s refused the token (--token or HTQ_TOKEN): %w", c.base, err)
	}
	return err
}

// QueueExists reports whether HTQ has the queue.
func (c *Client) QueueExists(ctx context.Context, name string) (bool, error) {
	status, err := c.do(ctx, http.MethodGet, "/v1/queues/"+url.PathEscape(name), nil, nil)
	if status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// CreateQueue creates a queue (PUT).
func (c *Client) CreateQueue(ctx context.Context, name string, q QueueSpec) error {
	_, err := c.do(ctx, http.MethodPut, "/v1/queues/"+url.PathEscape(name), q, nil)
	return err
}

// BatchResult is one task's result in a batch answer.
type BatchResult struct {
	ID      string `json:"id"`
	Existed bool   `json:"existed"`
}

// AddTasks enqueues tasks in one batch (all or nothing).
func (c *Client) AddTasks(ctx context.Context, queue string, tasks []TaskRequest) ([]BatchResult, error) {
	var out struct {
		Tasks []BatchResult `json:"tasks"`
	}
	if _, err := c.do(ctx, http.MethodPost, "/v1/queues/"+url.PathEscape(queue)+"/tasks/batch", map[string]any{"tasks": tasks}, &out); err != nil {
		return nil, err
	}
	if len(out.Tasks) != len(tasks) {
		return nil, fmt.Errorf("%w: batch of %d tasks answered with %d results", ErrHTQ, len(tasks), len(out.Tasks))
	}
	return out.Tasks, nil
}
