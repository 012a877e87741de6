package server

import "syscall"

// rawWrites is false on Windows: a socket there is not written with
// write(2), so every answer goes through the connection's writer
// goroutine (see conn.flush).
const rawWrites = false

// writeFD is never called on Windows (no connection has a raw socket).
func writeFD(uintptr, []byte) (int, error) { return 0, syscall.EWINDOWS }
