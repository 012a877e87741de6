package server_test

import (
	"context"
	"net"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

// smallSendBuffers is a listener whose connections have small send
// buffers, so that a client that does not read fills them soon.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4 << 10)
	}
	return nc, err
}

// TestServerClientReadsLate: a client pipelines 20,000 PINGs before it
// reads any answer, so the server's socket fills up (700 KB of answers
// against a 4 KiB send buffer and the client's receive buffer) and the
// answers that cannot be written at once go to a writer goroutine that
// waits for the client; every answer still arrives, once, in order.
func TestServerClientReadsLate(t *testing.T) {
	t.Parallel()
	const pings = 20000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv := server.New(engine.New(&holdingRedis{}), server.Config{Logger: zerolog.Nop()})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, smallSendBuffers{ln}) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	c := dial(t, ln.Addr().String())
	ping := wire.AppendFrame(nil, wire.TypePing, nil)
	unknown := wire.AppendFrame(nil, wire.Type(0x7f), nil)
	var burst []byte
	for i := range pings {
		// Every 100th frame is of an unknown type: its answer tells the
		// order.
		if i%100 == 99 {
			burst = append(burst, unknown...)
		} else {
			burst = append(burst, ping...)
		}
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		if _, err := c.nc.Write(burst); err != nil {
			t.Errorf("write: %v", err)
		}
	})
	wg.Wait()
	for i := range pings {
		f := c.mustNext()
		want := wire.TypePing.Response()
		if i%100 == 99 {
			want = wire.Type(0x7f).Response()
		}
		if f.Type != want {
			t.Fatalf("answer %d: type %#x, want %#x", i, byte(f.Type), byte(want))
		}
	}
}
