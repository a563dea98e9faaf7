// Command htq-api runs HTQ's api role. See the README for its flags and
// configuration.
package main

import (
	"os"
	_ "time/tzdata" // api.time_zone works in images without /usr/share/zoneinfo

	"github.com/htq/htq/internal/roles"
)

func main() { os.Exit(roles.Main("api", os.Args[1:], os.Stderr, roles.RunAPI)) }
