//go:build !linux

package main

import "syscall"

func redisSysProcAttr() *syscall.SysProcAttr { return nil }
