package testenv

import "syscall"

// runAs is the user the cluster's programs run as when the tests run as root.
type runAs struct{ uid, gid int }

// sysProcAttr runs a command as cred (if not nil) and, for the server
// (parentDeath), makes the kernel stop it with SIGQUIT (immediate
// shutdown) if the test process dies without running [Main]'s cleanup.
func sysProcAttr(cred *runAs, parentDeath bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{}
	if cred != nil {
		a.Credential = &syscall.Credential{Uid: uint32(cred.uid), Gid: uint32(cred.gid)}
	}
	if parentDeath {
		a.Pdeathsig = syscall.SIGQUIT
	}
	return a
}
