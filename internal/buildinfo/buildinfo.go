// Package buildinfo holds the version stamped into the binaries at build
// time (make build sets it with -ldflags).
package buildinfo

// Version is HTQ's version, "dev" for untagged builds.
var Version = "dev"

// UserAgent is the User-Agent of HTQ's calls.
func UserAgent() string { return "htq/" + Version }
