//go:build linux

package main

import "syscall"

// redisSysProcAttr makes the kernel kill redis-server if the benchmark process
// dies without running its cleanup (e.g. SIGKILL).
func redisSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
