package transport

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// logLines is a log sink that hands each line to the test.
type logLines chan string

func (l logLines) Write(p []byte) (int, error) {
	l <- string(p)
	return len(p), nil
}

// TestMaxClientsLogSaysNow: a maxclients refusal is logged with the next
// step "raise maxclients (now N)", N read from Redis off the caller's
// path; without N when Redis cannot be asked. Refusals within the second
// add no line.
func TestMaxClientsLogSaysNow(t *testing.T) {
	noDial := func(context.Context, string, string) (net.Conn, error) { return nil, errors.New("no dial") }
	for _, tc := range []struct {
		name, addr string
		dial       DialFunc
		want, not  string
	}{
		{"redis answers", redistest.StartTestServer(t, "--maxclients", "321").Addr, nil, `"next_step":"redis refused the connection: raise maxclients (now 321)"`, ""},
		{"redis cannot be asked", "127.0.0.1:6379", noDial, `"next_step":"redis refused the connection: raise maxclients"`, "(now"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := make(logLines, 10)
			p := NewPool(PoolConfig{Addr: tc.addr, Dial: tc.dial, Logger: zerolog.New(log)})
			defer p.Close()
			r := &Refusal{Cause: CauseMaxClients, Reply: "ERR max number of clients reached"}
			start := time.Now()
			for range 3 {
				p.refused(r)
			}
			if took := time.Since(start); took > 50*time.Millisecond {
				t.Errorf("refused took %s, want no wait for Redis", took)
			}
			var got string
			select {
			case got = <-log:
			case <-time.After(3 * time.Second):
				t.Fatal("no log line")
			}
			if !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
				t.Errorf("log %q, want %s", got, tc.want)
			}
			select {
			case more := <-log:
				t.Errorf("a second line: %q", more)
			case <-time.After(maxClientsTimeout):
			}
		})
	}
}
