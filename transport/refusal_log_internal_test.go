package transport

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// lockedBuffer is a log sink safe for the goroutine that writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestMaxClientsLogSaysNow: a maxclients refusal is logged with the next
// step "raise maxclients (now N)", N read from Redis off the caller's
// path; without N when Redis cannot be asked. Refusals within the second
// add no line.
func TestMaxClientsLogSaysNow(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, tc := range []struct {
		name, addr, want, not string
	}{
		{"redis answers", redistest.StartTestServer(t, "--maxclients", "321").Addr, `"next_step":"redis refused the connection: raise maxclients (now 321)"`, ""},
		{"redis cannot be asked", closed, `"next_step":"redis refused the connection: raise maxclients"`, "(now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var log lockedBuffer
			p := NewPool(PoolConfig{Addr: tc.addr, Logger: zerolog.New(&log)})
			defer p.Close()
			r := &Refusal{Cause: CauseMaxClients, Reply: "ERR max number of clients reached"}
			start := time.Now()
			for range 3 {
				p.refused(r)
			}
			if took := time.Since(start); took > 50*time.Millisecond {
				t.Errorf("refused took %s, want no wait for Redis", took)
			}
			for end := time.Now().Add(3 * time.Second); !strings.Contains(log.String(), "\n") && time.Now().Before(end); {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(maxClientsTimeout) // no second line comes
			got := log.String()
			if !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
				t.Errorf("log %q, want %s", got, tc.want)
			}
			if n := strings.Count(got, "\n"); n != 1 {
				t.Errorf("%d lines, want 1: %q", n, got)
			}
		})
	}
}
