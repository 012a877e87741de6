package transport_test

import (
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/transport"
)

// waitForLog waits until log holds want, and returns what it holds.
func waitForLog(t *testing.T, log *saletest.SyncBuffer, want string) string {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if s := log.String(); strings.Contains(s, want) {
			return s
		}
	}
	t.Fatalf("no %q in the log: %q", want, log.String())
	return ""
}

// TestBatcherLogsDialFailure: lanes that cannot dial are logged, at most
// once a second however often they retry, and with no password.
func TestBatcherLogsDialFailure(t *testing.T) {
	var log saletest.SyncBuffer
	pool := transport.NewPool(transport.PoolConfig{
		Addr:   "redis://:secret@" + saletest.ClosedAddr(t),
		Logger: zerolog.New(&log),
	})
	defer pool.Close()
	b := transport.NewBatcher(pool, transport.BatcherConfig{Conns: 4})
	defer b.Close()
	waitForLog(t, &log, "could not dial")
	time.Sleep(500 * time.Millisecond) // the lanes try again every few ms
	got := log.String()
	if n := strings.Count(got, "\n"); n != 1 {
		t.Errorf("%d lines in half a second, want 1: %q", n, got)
	}
	if strings.Contains(got, "secret") {
		t.Errorf("the log shows the password: %q", got)
	}
}

// TestBatcherLogsLostConnection: a batch connection that Redis closes is
// logged (found dead by the idle probe), and dialled again.
func TestBatcherLogsLostConnection(t *testing.T) {
	var log saletest.SyncBuffer
	srv := redistest.StartTestServer(t)
	pool := transport.NewPool(transport.PoolConfig{Addr: srv.Addr, Logger: zerolog.New(&log)})
	defer pool.Close()
	b := transport.NewBatcher(pool, transport.BatcherConfig{Conns: 1, IdleProbe: 100 * time.Millisecond})
	defer b.Close()
	if err := b.Ping(testContext(t)); err != nil {
		t.Fatal(err)
	}
	c, err := redis.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	time.Sleep(100 * time.Millisecond) // the lane has dialled
	rawDo(t, c, "CLIENT", "KILL", "TYPE", "normal")
	waitForLog(t, &log, "batch connection lost")
}
