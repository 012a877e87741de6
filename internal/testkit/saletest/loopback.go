package saletest

import (
	"net"
	"testing"
)

// Loopback listens on a free loopback port until the test ends and runs
// serve on a goroutine of its own for every connection it accepts; each
// connection is closed when the test ends, if serve has not closed it. It
// returns the address, for the fake servers tests talk to.
func Loopback(t testing.TB, serve func(nc net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { nc.Close() })
			go serve(nc)
		}
	}()
	return ln.Addr().String()
}
