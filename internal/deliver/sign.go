package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Standard Webhooks headers (https://www.standardwebhooks.com).
const (
	HeaderWebhookID        = "webhook-id"
	HeaderWebhookTimestamp = "webhook-timestamp"
	HeaderWebhookSignature = "webhook-signature"
	secretPrefix           = "whsec_"
)

// ErrBadSecret reports a signing secret that is not "whsec_" + base64.
var ErrBadSecret = errors.New("invalid signing secret")

// Signer signs calls as Standard Webhooks does: the signature is
// "v1," + base64(HMAC-SHA256(key, id + "." + timestamp + "." + body)), one per
// active secret, space-separated, so a secret can be rotated without a gap.
type Signer struct {
	keys [][]byte
}

// NewSigner returns a signer for the given secrets ("whsec_<base64>"; the
// prefix is optional); empty ones are skipped. It returns nil when none is
// given: calls are then not signed.
func NewSigner(secrets ...string) (*Signer, error) {
	s := &Signer{}
	for i, sec := range secrets {
		sec = strings.TrimSpace(sec)
		if sec == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, secretPrefix))
		if err != nil || len(key) < 16 {
			return nil, fmt.Errorf("%w (number %d): want whsec_ followed by the base64 of at least 16 random bytes", ErrBadSecret, i+1)
		}
		s.keys = append(s.keys, key)
	}
	if len(s.keys) == 0 {
		return nil, nil
	}
	return s, nil
}

// Sign returns the three headers' values for a message.
func (s *Signer) Sign(id string, at time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(at.Unix(), 10)
	sigs := make([]string, len(s.keys))
	for i, k := range s.keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(timestamp))
		m.Write([]byte{'.'})
		m.Write(body)
		sigs[i] = "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return timestamp, strings.Join(sigs, " ")
}
