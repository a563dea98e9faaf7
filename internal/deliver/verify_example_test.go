package deliver_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/htq/htq/internal/deliver"
	"github.com/htq/htq/internal/task"
)

// VerifyWebhook is how a Go receiver checks HTQ's signature (the same steps
// as the PHP function in docs/signing.md): recompute the HMAC of
// "id.timestamp.body" with the secret, compare it in constant time with each
// v1 signature, and refuse timestamps more than five minutes away (replays).
func VerifyWebhook(secret string, h http.Header, body []byte, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	ts, err := strconv.ParseInt(h.Get("webhook-timestamp"), 10, 64)
	if err != nil || math.Abs(float64(now.Unix()-ts)) > 300 {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(h.Get("webhook-id") + "." + h.Get("webhook-timestamp") + "."))
	mac.Write(body)
	expected := mac.Sum(nil)
	for _, part := range strings.Fields(h.Get("webhook-signature")) {
		if v, sig, ok := strings.Cut(part, ","); ok && v == "v1" {
			if got, err := base64.StdEncoding.DecodeString(sig); err == nil && hmac.Equal(got, expected) {
				return true
			}
		}
	}
	return false
}

func Example_verifyWebhook() {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	results := make(chan bool, 1)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body) // verify the raw bytes, before parsing them
		ok := VerifyWebhook(secret, r.Header, body, time.Now())
		if !ok {
			w.WriteHeader(http.StatusUnauthorized)
		}
		results <- ok
	}))
	defer target.Close()

	signer, _ := deliver.NewSigner(secret)                                             // HTQ_SIGNING_SECRET on the dispatcher
	htq, _ := deliver.New(deliver.Options{MaxResponseBytes: 64 << 10, Signer: signer}) // dispatcher.max_response_bytes
	res := htq.Do(context.Background(), &deliver.Call{
		TaskID: "4b000000000001", Queue: "orders", Attempt: 1, Seq: 1, Timeout: 5 * time.Second,
		Spec: &task.Spec{Method: "POST", URL: target.URL, BodyKind: task.BodyRaw, Body: `{"order":42}`},
	})
	fmt.Println("verified:", <-results, "status:", res.Status)
	// Output: verified: true status: 200
}

// TestSigningDocMatchesVerifier keeps the verifier shown in docs/signing.md
// the same as VerifyWebhook above, which the example runs.
func TestSigningDocMatchesVerifier(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("verify_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("../../docs/signing.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(src)
	start := strings.Index(s, "// VerifyWebhook is how")
	end := strings.Index(s, "\nfunc Example_verifyWebhook")
	if start < 0 || end < start {
		t.Fatal("VerifyWebhook not found in verify_example_test.go")
	}
	fn := strings.TrimSpace(s[start:end])
	if !strings.Contains(string(doc), fn+"\n```") {
		t.Errorf("docs/signing.md does not show VerifyWebhook as it is in verify_example_test.go; copy it again:\n%s", fn)
	}
}
