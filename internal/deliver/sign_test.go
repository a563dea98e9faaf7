package deliver_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/task"
)

// verify checks a Standard Webhooks signature the way a receiver does, from
// the spec alone (not HTQ's signing code): it reports whether any v1
// signature in the header matches the secret.
func verify(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	msg := h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "." + string(body)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(msg))
	want := mac.Sum(nil)
	for _, part := range strings.Fields(h.Get("webhook-signature")) {
		v, sig, ok := strings.Cut(part, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(sig)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

const (
	secretA = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretB = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"
)

type received struct {
	h    http.Header
	body []byte
}

func signedTarget(t *testing.T) (*httptest.Server, chan received) {
	got := make(chan received, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got <- received{r.Header.Clone(), b}
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

func TestSignedCallsVerify(t *testing.T) {
	t.Parallel()
	srv, got := signedTarget(t)
	signer, err := deliver.NewSigner(secretA)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, deliver.Options{Signer: signer})
	for _, spec := range []*task.Spec{
		{Method: "POST", URL: srv.URL, BodyKind: task.BodyRaw, Body: `{"order":42}`},
		{Method: "POST", URL: srv.URL, BodyKind: task.BodyMultipart, Form: []task.Field{{Name: "a", Value: "1"}}},
		{Method: "GET", URL: srv.URL + "/?x=1"},
	} {
		before := time.Now().Unix()
		r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000007", Queue: "q", Attempt: 1, Seq: 1, Spec: spec, Timeout: 5 * time.Second})
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		rc := <-got
		if rc.h.Get("webhook-id") != "0a000000000007" {
			t.Fatalf("webhook-id = %q", rc.h.Get("webhook-id"))
		}
		ts, _ := strconv.ParseInt(rc.h.Get("webhook-timestamp"), 10, 64)
		if ts < before || ts > time.Now().Unix() {
			t.Fatalf("webhook-timestamp %d is not now", ts)
		}
		if !verify(secretA, rc.h, rc.body) {
			t.Fatalf("%s %s: signature %q does not verify", spec.Method, spec.BodyKind, rc.h.Get("webhook-signature"))
		}
		if verify(secretB, rc.h, rc.body) {
			t.Fatal("verified with the wrong secret")
		}
		if verify(secretA, rc.h, append(rc.body, 'x')) {
			t.Fatal("verified a changed body")
		}
	}
}

func TestSigningRotationSendsBothSignatures(t *testing.T) {
	t.Parallel()
	srv, got := signedTarget(t)
	signer, err := deliver.NewSigner(secretB, secretA) // new secret, then the one being retired
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(t, deliver.Options{Signer: signer})
	spec := &task.Spec{Method: "POST", URL: srv.URL, BodyKind: task.BodyRaw, Body: "hello"}
	if r := c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: spec, Timeout: 5 * time.Second}); r.Err != nil {
		t.Fatal(r.Err)
	}
	rc := <-got
	if n := len(strings.Fields(rc.h.Get("webhook-signature"))); n != 2 {
		t.Fatalf("%d signatures, want 2", n)
	}
	// receivers on either secret accept the call
	if !verify(secretA, rc.h, rc.body) || !verify(secretB, rc.h, rc.body) {
		t.Fatal("a receiver with one of the active secrets cannot verify")
	}
}

func TestUnsignedWithoutSecretAndBadSecrets(t *testing.T) {
	t.Parallel()
	if s, err := deliver.NewSigner("", " "); s != nil || err != nil {
		t.Fatalf("no secrets = %v, %v; want no signer", s, err)
	}
	for _, bad := range []string{"whsec_!!!", "whsec_c2hvcnQ=", "not base64 at all"} {
		if _, err := deliver.NewSigner(bad); !errors.Is(err, deliver.ErrBadSecret) {
			t.Errorf("NewSigner(%q) = %v, want ErrBadSecret", bad, err)
		}
	}
	srv, got := signedTarget(t)
	c := newClient(t, deliver.Options{})
	c.Do(t.Context(), &deliver.Call{TaskID: "0a000000000001", Spec: &task.Spec{Method: "GET", URL: srv.URL}, Timeout: 5 * time.Second})
	if rc := <-got; rc.h.Get("webhook-signature") != "" {
		t.Fatal("signed without a secret")
	}
}
