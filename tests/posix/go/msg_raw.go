// SPDX-License-Identifier: MIT
//
// A Go program (gccgo) that makes System V message queue system calls
// itself, with package syscall: no libc wrapper in the way. Built
// dynamically and statically by tests/posix/run.sh. With KIPC_TEST_LEAVE
// set it makes a queue, writes its id to descriptor 3 and exits, so that
// run.sh can check which kernel has it.
package main

import (
	"fmt"
	"os"
	"syscall"
	"unsafe"
)

type msg struct {
	mtype int64
	text  [16]byte
}

func main() {
	if os.Getenv("KIPC_TEST_LEAVE") != "" {
		id, _, _ := syscall.Syscall(syscall.SYS_MSGGET, 0, 01000|0600, 0)
		fmt.Fprintf(os.NewFile(3, "id"), "%d\n", int(id))
		return
	}
	id, _, e := syscall.Syscall(syscall.SYS_MSGGET, 0 /* IPC_PRIVATE */, 01000|0600, 0)
	fmt.Println("msgget:", e == 0)
	m := msg{mtype: 7}
	copy(m.text[:], "hello go")
	_, _, e = syscall.Syscall6(syscall.SYS_MSGSND, id, uintptr(unsafe.Pointer(&m)), 8, 0, 0, 0)
	fmt.Println("msgsnd:", e == 0)
	var r msg
	n, _, e := syscall.Syscall6(syscall.SYS_MSGRCV, id, uintptr(unsafe.Pointer(&r)), 16, 0, 04000, 0)
	fmt.Println("msgrcv:", e == 0, n, r.mtype, string(r.text[:n]))
	_, _, e = syscall.Syscall6(syscall.SYS_MSGRCV, id, uintptr(unsafe.Pointer(&r)), 16, 0, 04000, 0)
	fmt.Println("msgrcv empty:", e)
	_, _, e = syscall.Syscall(syscall.SYS_MSGCTL, id, 0 /* IPC_RMID */, 0)
	fmt.Println("msgctl IPC_RMID:", e == 0)
	_, _, e = syscall.Syscall6(syscall.SYS_MSGSND, id, uintptr(unsafe.Pointer(&m)), 8, 0, 0, 0)
	fmt.Println("msgsnd after IPC_RMID:", e)
}
