package wire

import (
	"net"
	"syscall"
	"unsafe"
)

// rawConn returns the file descriptor access of a plain TCP or Unix socket,
// or nil for anything else: a TLS connection, or a net.Conn some listener
// wrapped, must not be read or written around.
func rawConn(conn net.Conn) syscall.RawConn {
	var rc syscall.RawConn
	var err error
	switch c := conn.(type) {
	case *net.TCPConn:
		rc, err = c.SyscallConn()
	case *net.UnixConn:
		rc, err = c.SyscallConn()
	}
	if err != nil {
		return nil
	}
	return rc
}

// writeNonblocking writes p with one non-blocking write(2), without waiting
// for room in the send buffer. It returns how many bytes the kernel took: 0
// when it would block or on any error, which the writer goroutine will meet
// again and handle.
func writeNonblocking(rc syscall.RawConn, p []byte) int {
	n := 0
	var werr error
	err := rc.Write(func(fd uintptr) bool {
		for {
			n, werr = syscall.Write(int(fd), p)
			if werr != syscall.EINTR {
				return true // never wait for the poller
			}
		}
	})
	if err != nil || werr != nil || n < 0 {
		return 0
	}
	return n
}

// peek copies what the kernel holds for the socket into b without taking
// it, and without waiting.
func peek(fd uintptr, b []byte) (int, syscall.Errno) {
	for {
		n, _, errno := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)),
			syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}

// waitReadable parks until the socket has bytes to read, or has reached its
// end, or is closed; it reports false in the last case. It takes nothing,
// and it parks on whatever stack its caller has: that is the point.
func waitReadable(rc syscall.RawConn) bool {
	err := rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, errno := peek(fd, b[:])
		return errno != syscall.EAGAIN
	})
	return err == nil
}

// readable reports whether the socket has bytes to read (or has reached its
// end), without waiting.
func readable(rc syscall.RawConn) bool {
	ok := true
	rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, errno := peek(fd, b[:])
		ok = errno != syscall.EAGAIN
		return true
	})
	return ok
}

// takePong reads and drops the client's answer to a ping of ours, if it is
// the first thing the socket holds (see isPong).
func takePong(rc syscall.RawConn) bool {
	taken := false
	rc.Read(func(fd uintptr) bool {
		var b [pongLen]byte
		if n, errno := peek(fd, b[:]); errno != 0 || n < len(b) || !isPong(b[:]) {
			return true
		}
		n, err := syscall.Read(int(fd), b[:])
		taken = err == nil && n == len(b)
		return true
	})
	return taken
}
