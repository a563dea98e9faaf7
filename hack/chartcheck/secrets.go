package main

import (
	"net/url"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Passwords belong in Secrets, read from a file or an environment variable
// that references the Secret. These checks find them where anyone who can
// read the pod spec, the ConfigMap or the node's process list would see them.

// redisAuthDirectives are the redis.conf directives that carry a password.
var redisAuthDirectives = []string{"requirepass", "masterauth"}

// argPassword matches "requirepass <value>" or "--requirepass=<value>"
// inside one argument (a shell script passed with sh -c, for instance); the
// value may be quoted.
var argPassword = regexp.MustCompile(`(?i)(^|[\s'"-])(requirepass|masterauth)(=|\s+)['"]?[^\s'"]+['"]?`)

// confPassword matches a redis.conf line that sets a password (Redis reads
// directives in any case, quoted or not; an ACL user line carries its
// passwords as >password).
var confPassword = regexp.MustCompile(`(?im)^[ \t\r]*["']?(?:(?:requirepass|masterauth)["']?[ \t]+\S|user["']?[ \t].*[ \t"']>\S)`)

// passwordInArgs reports the first argument that passes a Redis password on
// the command line: as the value after --requirepass, or inline. Such a
// value (even $(VAR), which the kubelet expands) is in the process list of
// the node and in /proc/<pid>/cmdline.
func passwordInArgs(args []string) (string, bool) {
	for i, a := range args {
		flag := strings.ToLower(strings.TrimLeft(a, "-"))
		if slices.Contains(redisAuthDirectives, flag) && i+1 < len(args) {
			return a + " " + args[i+1], true
		}
		if argPassword.MatchString(a) {
			return a, true
		}
	}
	return "", false
}

// urlPassword reports whether a Redis URL carries a password in its
// userinfo (redis://:pw@host, redis://user:pw@host).
func urlPassword(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		// An unparsable URL with "user:pw@" in its authority still leaks it.
		_, rest, ok := strings.Cut(raw, "://")
		if !ok {
			return false
		}
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[:i]
		}
		at := strings.LastIndex(rest, "@")
		return at >= 0 && strings.Contains(rest[:at], ":")
	}
	_, set := u.User.Password()
	return set
}

// checkContainerSecrets: no password on the command line, none in a literal
// environment value of a Redis URL.
func (c *checker) checkContainerSecrets(ct *corev1.Container, bad func(string, ...any)) {
	if a, ok := passwordInArgs(slices.Concat(ct.Command, ct.Args)); ok {
		bad("passes a Redis password on the command line (%q): it shows in the pod spec or the process list; include a file written from the Secret instead", redact(a))
	}
	for _, e := range ct.Env {
		if e.ValueFrom == nil && strings.HasSuffix(e.Name, "REDIS_URL") && urlPassword(e.Value) {
			bad("env %s: the Redis URL holds a password, which the pod spec shows; use HTQ_REDIS_PASSWORD from a Secret", e.Name)
		}
	}
}

// checkConfigMapSecrets: no redis.conf password line and no Redis URL with
// a password in any ConfigMap (anyone with "get configmaps" reads them).
func (c *checker) checkConfigMapSecrets(o *Object, cm *corev1.ConfigMap) {
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range cm.Data {
			if !yield(k) {
				return
			}
		}
	}) {
		v := cm.Data[k]
		if m := confPassword.FindString(v); m != "" {
			c.errf(o, "key %s sets a Redis password (%s ...) in a ConfigMap: put it in a Secret", k, strings.Fields(m)[0])
		}
		for _, u := range redisURL.FindAllString(v, -1) {
			if urlPassword(u) {
				c.errf(o, "key %s holds a Redis URL with a password (%s): put the password in a Secret", k, redactURL(u))
			}
		}
	}
}

var redisURL = regexp.MustCompile(`rediss?://[^\s"']+`)

// redact keeps messages free of the secret they are about.
func redact(s string) string {
	return argValue.ReplaceAllString(s, "${1}***")
}

var argValue = regexp.MustCompile(`(?i)((?:requirepass|masterauth)(?:=|\s+))\S+`)

// redactURL drops a URL's userinfo.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	end := len(rest)
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		end = i
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = "***@" + rest[at+1:]
	}
	return scheme + "://" + rest
}
