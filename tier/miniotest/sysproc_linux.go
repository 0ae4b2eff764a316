package miniotest

import "syscall"

// sysProcAttr kills minio if the test binary dies without running cleanups
// (a go test -timeout panic, say), so servers never outlive their test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
