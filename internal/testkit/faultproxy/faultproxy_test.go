package faultproxy_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/faultproxy"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// echo sends msg on a fresh connection to addr and reads it back within d,
// returning how long that took.
func echo(t *testing.T, addr string, d time.Duration) (time.Duration, error) {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	start := time.Now()
	nc.SetDeadline(start.Add(d))
	if _, err := nc.Write([]byte("ping")); err != nil {
		return 0, err
	}
	buf := make([]byte, 4)
	_, err = io.ReadFull(nc, buf)
	return time.Since(start), err
}

// TestProxy: each toxic has its effect while in place, and none once
// removed.
func TestProxy(t *testing.T) {
	upstream := saletest.Loopback(t, func(nc net.Conn) { io.Copy(nc, nc) })
	tests := []struct {
		name  string
		toxic faultproxy.Toxic
		check func(took time.Duration, err error) bool
	}{
		{"latency", faultproxy.Latency(faultproxy.Downstream, 100*time.Millisecond, 10*time.Millisecond),
			func(took time.Duration, err error) bool { return err == nil && took >= 90*time.Millisecond }},
		{"blackhole", faultproxy.Blackhole(faultproxy.Upstream),
			func(_ time.Duration, err error) bool { return err != nil }},
		{"reset", faultproxy.ResetPeer(faultproxy.Downstream, 0),
			func(_ time.Duration, err error) bool { return err != nil }},
		{"limit data", faultproxy.LimitData(faultproxy.Upstream, 2),
			func(_ time.Duration, err error) bool { return err != nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := faultproxy.Start(t, upstream)
			p.Add(t, tt.toxic)
			if took, err := echo(t, p.Addr, 500*time.Millisecond); !tt.check(took, err) {
				t.Errorf("with %s in place: echo took %s, %v", tt.toxic.Name, took, err)
			}
			p.Remove(t, tt.toxic)
			if took, err := echo(t, p.Addr, 500*time.Millisecond); err != nil || took > 200*time.Millisecond {
				t.Errorf("with %s removed: echo took %s, %v", tt.toxic.Name, took, err)
			}
		})
	}
}
