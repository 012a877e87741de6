//go:build !windows

package server

import "syscall"

// rawWrites: answers may be written straight to the socket, without
// waiting, by whoever completes them (see conn.flush).
const rawWrites = true

// writeFD writes p to the socket fd once, without waiting.
func writeFD(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }
