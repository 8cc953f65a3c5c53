//go:build !linux

package testenv

import "syscall"

// runAs is the user the cluster's programs run as when the tests run as root.
type runAs struct{ uid, gid int }

// sysProcAttr returns nil: outside Linux the cluster runs as the current
// user (which must not be root) and is stopped only by [Main].
func sysProcAttr(cred *runAs, parentDeath bool) *syscall.SysProcAttr { return nil }
