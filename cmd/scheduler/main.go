// Command htq-scheduler runs HTQ's scheduler role. See the README for its flags and
// configuration.
package main

import (
	"os"

	"github.com/htq/htq/internal/roles"
)

func main() { os.Exit(roles.Main("scheduler", os.Args[1:], os.Stderr, roles.RunScheduler)) }
