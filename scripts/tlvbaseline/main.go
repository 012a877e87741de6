package main

import (
	"bufio"
	"flag"
	"log"
	"net"
	"time"

	"github.com/flashsale/flashsale/wire"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8098", "TCP address to listen on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	for {
		conn, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go serve(conn)
	}
}

// idle bounds the wait for a frame, so a client that vanished is dropped.
const idle = time.Minute

// serve answers every frame on conn with SOLD_OUT (PONG to a ping), writing
// whenever no further frame is already buffered.
func serve(conn net.Conn) {
	defer conn.Close()
	r := wire.NewReader(conn, wire.DefaultMaxPayload)
	w := bufio.NewWriter(conn)
	soldOut := &wire.Response{Status: "SOLD_OUT"}
	pong := &wire.Response{Status: "PONG"}
	var out []byte
	for {
		conn.SetReadDeadline(time.Now().Add(idle))
		f, err := r.Next()
		if err != nil {
			return
		}
		answer := soldOut
		if f.Type == wire.TypePing {
			answer = pong
		}
		out = wire.AppendResponseFrame(out[:0], f.Type.Response(), answer)
		w.Write(out)
		if !r.Complete() {
			conn.SetWriteDeadline(time.Now().Add(idle))
			if w.Flush() != nil {
				return
			}
		}
	}
}
