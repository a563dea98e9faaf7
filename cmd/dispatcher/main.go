// Command htq-dispatcher runs HTQ's dispatcher role. See the README for its flags and
// configuration.
package main

import (
	"os"

	"github.com/htq/htq/internal/roles"
)

func main() { os.Exit(roles.Main("dispatcher", os.Args[1:], os.Stderr, roles.RunDispatcher)) }
