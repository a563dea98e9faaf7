package testcluster

import "github.com/htq/htq/client"

// Client is the Go client (package client) of the cluster's API with the
// cluster's token: the tests make their ordinary REST calls through it.
// opts come after the defaults, so a test can replace the HTTP client or
// the retries (a fault test that must see a failed call at once passes
// client.WithRetries(0, 0, 0)).
//
// The client sends no idempotency key of its own
// (client.WithoutIdempotencyKeys): the API then sees the same requests the
// tests sent before they used the client, and stores no key per task, and a
// create is never repeated, so a test counting accepted tasks counts each
// once. Repeatable calls (PUT, GET, DELETE, pause, resume) are retried on
// 429, 503 and connection errors, as the client does by default.
func (c *Cluster) Client(opts ...client.Option) *client.Client {
	c.t.Helper()
	return c.ClientAs(Token, opts...)
}

// ClientAs is Client with another bearer token (the cluster's own
// WholeConfig credentials, a read-only token, …).
func (c *Cluster) ClientAs(token string, opts ...client.Option) *client.Client {
	c.t.Helper()
	all := append([]client.Option{client.WithToken(token), client.WithoutIdempotencyKeys(),
		client.WithUserAgent("htq-system-test")}, opts...)
	hc, err := client.New(c.API, all...)
	if err != nil {
		c.t.Fatalf("client of %s: %v", c.API, err)
	}
	return hc
}
