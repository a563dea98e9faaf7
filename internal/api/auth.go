package api

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/htq/htq/internal/legacy"
	"github.com/htq/htq/internal/metrics"
)

// authV1 applies auth to every /v1 request, routed or not. Group middleware
// would do the same but registers catch-all not-found routes for the group,
// which turn a wrong method on a known /v1 route into 404 instead of 405.
func (s *Server) authV1(next echo.HandlerFunc) echo.HandlerFunc {
	authed := s.auth(next)
	return func(c echo.Context) error {
		if p := c.Request().URL.Path; p == "/v1" || strings.HasPrefix(p, "/v1/") {
			return authed(c)
		}
		return next(c)
	}
}

// auth checks the bearer token in constant time against every accepted one.
// A refused request counts as a rejected task only on the routes that create
// tasks: a 401 on a GET refuses no task. Without authentication
// (InsecureNoAuth) it refuses what a hostile web page could send instead:
// a request addressed to another name (DNS rebinding) or sent from another
// origin (a form or fetch from any page the user opens).
func (s *Server) auth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.cfg.InsecureNoAuth {
			r := c.Request()
			if !s.hostAllowed(r.Host) {
				s.rejectUnauthorized(c)
				return apiErr(http.StatusMisdirectedRequest, CodeMisdirected,
					"without authentication (api.insecure_no_auth) /v1 answers only requests to a loopback address, localhost or a name in api.allowed_hosts")
			}
			if o := r.Header.Get("Origin"); o != "" && !s.originAllowed(o, r.Host) {
				s.rejectUnauthorized(c)
				return apiErr(http.StatusForbidden, CodeForbidden,
					"without authentication (api.insecure_no_auth) /v1 refuses cross-origin requests from origins not in api.cors_origins")
			}
			return next(c)
		}
		h := c.Request().Header.Get("Authorization")
		// the scheme is case-insensitive (RFC 9110 section 11.1)
		scheme, tok, _ := strings.Cut(strings.TrimSpace(h), " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			s.rejectUnauthorized(c)
			return apiErr(http.StatusUnauthorized, CodeUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		}
		full, readOnly := s.tokenKind(strings.TrimSpace(tok))
		if !full && !readOnly {
			s.rejectUnauthorized(c)
			return apiErr(http.StatusUnauthorized, CodeUnauthorized, "invalid bearer token")
		}
		if readOnly {
			c.Set(ctxReadOnly, true)
			if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
				s.rejectUnauthorized(c)
				return apiErr(http.StatusForbidden, CodeForbidden, "this token is read-only (api.read_only_tokens): it may only call GET routes")
			}
		}
		return next(c)
	}
}

// ctxReadOnly is the echo context key set when a request was
// authenticated with a read-only token.
const ctxReadOnly = "htq.read_only"

// tokenKind compares tok in constant time against every accepted token and
// says whether it is a full one or a read-only one (never both: config
// validation refuses a token in both lists, and a token in both counts as
// read-only here).
func (s *Server) tokenKind(tok string) (full, readOnly bool) {
	sum := sha256.Sum256([]byte(tok))
	mf, mr := 0, 0
	for _, t := range s.cfg.Tokens {
		mf |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	for _, t := range s.cfg.ReadOnlyTokens {
		mr |= subtle.ConstantTimeCompare(sum[:], t[:])
	}
	return mf == 1 && mr == 0, mr == 1
}

// refuseReadOnlyLegacy refuses a legacy /api call that presents a
// read-only token as its bearer token: every legacy call changes something
// or exposes the legacy credentials' powers, so none is allowed to such a
// token. (A legacy app_token equal to a read-only token is refused in
// refuseReadOnlyAppToken; config validation keeps the two apart.)
func (s *Server) refuseReadOnlyLegacy(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !strings.HasPrefix(c.Request().URL.Path, legacy.Prefix) || len(s.cfg.ReadOnlyTokens) == 0 {
			return next(c)
		}
		scheme, tok, _ := strings.Cut(strings.TrimSpace(c.Request().Header.Get("Authorization")), " ")
		if strings.EqualFold(scheme, "Bearer") {
			if _, ro := s.tokenKind(strings.TrimSpace(tok)); ro {
				s.legacy.RejectedBy(c, metrics.ReasonUnauthorized)
				return forbiddenLegacy
			}
		}
		return next(c)
	}
}

// refuseReadOnlyAppToken refuses a legacy call whose app_token is one of
// the read-only bearer tokens (config validation keeps the two apart; this
// holds even if they met).
func (s *Server) refuseReadOnlyAppToken(appToken string) error {
	if len(s.cfg.ReadOnlyTokens) == 0 {
		return nil
	}
	if _, ro := s.tokenKind(appToken); ro {
		return forbiddenLegacy
	}
	return nil
}

// forbiddenLegacy answers a legacy call made with a read-only token.
var forbiddenLegacy = apiErr(http.StatusForbidden, CodeForbidden, "this token is read-only (api.read_only_tokens): the legacy /api protocol is refused to it")

// isReadOnly reports whether the request was authenticated with a
// read-only token.
func isReadOnly(c echo.Context) bool {
	ro, _ := c.Get(ctxReadOnly).(bool)
	return ro
}

// whoami says what the caller's token may do.
func (s *Server) whoami(c echo.Context) error {
	return c.JSON(http.StatusOK, struct {
		ReadOnly bool `json:"read_only"`
	}{ReadOnly: isReadOnly(c)})
}

// hostAllowed reports whether a request's Host names this API without
// authentication: a loopback address, localhost, or a configured name.
func (s *Server) hostAllowed(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")), ".")
	if h == "localhost" {
		return true
	}
	if a, err := netip.ParseAddr(h); err == nil && a.Unmap().IsLoopback() {
		return true
	}
	for _, n := range s.cfg.AllowedHosts {
		if strings.EqualFold(strings.TrimSuffix(n, "."), h) {
			return true
		}
	}
	return false
}

// originAllowed reports whether a browser's Origin may use the API without
// authentication: the API's own origin (its Host), or a configured one.
func (s *Server) originAllowed(origin, host string) bool {
	for _, o := range s.cfg.CORSOrigins {
		if o == origin {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && strings.EqualFold(u.Host, host)
}

func (s *Server) rejectUnauthorized(c echo.Context) {
	if createsTasks(c) {
		s.m.Rejected.WithLabelValues(metrics.ReasonUnauthorized).Inc()
	}
}
