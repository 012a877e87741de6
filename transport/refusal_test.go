package transport_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// refusalCounter is an Observer that counts refusals by cause.
type refusalCounter struct{ n [16]atomic.Int64 }

func (*refusalCounter) Batch(int, time.Duration)        {}
func (o *refusalCounter) Refused(cause transport.Cause) { o.n[cause].Add(1) }

// refusingRedis is a fake Redis on loopback that answers every command
// with the error reply reply, as a Redis loading its data set, a replica
// or one out of memory answers a script.
func refusingRedis(t *testing.T, reply string) string {
	t.Helper()
	return saletest.Loopback(t, func(nc net.Conn) { answerEvery(nc, "-"+reply+"\r\n") })
}

// answerEvery reads RESP commands from nc and answers each with reply.
func answerEvery(nc net.Conn, reply string) {
	answerWith(nc, func([]string) (string, bool) { return reply, true })
}

// answerWith reads RESP commands from nc and writes what reply says of
// each command's words, until it says not to go on.
func answerWith(nc net.Conn, reply func(args []string) (string, bool)) {
	defer nc.Close()
	r := bufio.NewReader(nc)
	for {
		n, err := respHeader(r, '*')
		if err != nil {
			return
		}
		args := make([]string, n)
		for i := range n {
			size, err := respHeader(r, '$')
			if err != nil {
				return
			}
			b := make([]byte, size+2)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			args[i] = string(b[:size])
		}
		out, more := reply(args)
		if _, err := io.WriteString(nc, out); err != nil || !more {
			return
		}
	}
}

// respHeader reads a RESP line "<kind><n>\r\n" and returns n.
func respHeader(r *bufio.Reader, kind byte) (int, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 3 || line[0] != kind {
		return 0, fmt.Errorf("unexpected %q", line)
	}
	return strconv.Atoi(strings.TrimRight(line[1:], "\r\n"))
}

// TestRefusedPurchase: a Redis that refuses every script (loading, a
// replica, out of memory…) gets purchases answered UNAVAILABLE (out of
// memory: STORE_FULL) saying nothing was sold, never INTERNAL and never
// "outcome unknown"; the
// refusal is counted by cause, and Ping fails with the operator's next
// step although the connection answers.
func TestRefusedPurchase(t *testing.T) {
	for _, tc := range []struct {
		reply string
		cause transport.Cause
		code  string
	}{
		{"LOADING Redis is loading the dataset in memory", transport.CauseLoading, engine.CodeUnavailable},
		{"READONLY You can't write against a read only replica.", transport.CauseReadOnly, engine.CodeUnavailable},
		{"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", transport.CauseMasterDown, engine.CodeUnavailable},
		{"OOM command not allowed when used memory > 'maxmemory'.", transport.CauseOOM, engine.CodeStoreFull},
		{"MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.", transport.CauseMisconf, engine.CodeUnavailable},
		{"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", transport.CauseBusy, engine.CodeUnavailable},
	} {
		t.Run(tc.cause.String(), func(t *testing.T) {
			obs := &refusalCounter{}
			pool := transport.NewPool(transport.PoolConfig{Addr: refusingRedis(t, tc.reply), Timeout: time.Second})
			t.Cleanup(func() { pool.Close() })
			b := transport.NewBatcher(pool, transport.BatcherConfig{Observer: obs})
			t.Cleanup(func() { b.Close() })
			eng := engine.New(b)
			start := time.Now()
			res := eng.Purchase(saletest.Context(t), engine.Request{ProductID: "p", UserID: "u"})
			if res.Status != wire.StatusError || res.Code != tc.code ||
				strings.Contains(res.Message, "outcome unknown") || !strings.Contains(res.Message, "did not run") {
				t.Fatalf("purchase = %s %s %q (%v), want %s saying it did not run", res.Status, res.Code, res.Message, res.Err, tc.code)
			}
			if !errors.Is(res.Err, tc.cause.Err()) || errors.Is(res.Err, engine.ErrOutcomeUnknown) {
				t.Errorf("purchase error %v, want %v and not outcome unknown", res.Err, tc.cause.Err())
			}
			if took := time.Since(start); took > 500*time.Millisecond {
				t.Errorf("refusal answered after %s, want at once", took)
			}
			if n := obs.n[tc.cause].Load(); n != 1 {
				t.Errorf("%d refusals counted as %s, want 1", n, tc.cause)
			}
			if err := b.Ping(saletest.Context(t)); !errors.Is(err, tc.cause.Err()) {
				t.Errorf("Ping = %v, want %v", err, tc.cause.Err())
			}
		})
	}
}

// TestMaxClientsLane: Redis is at maxclients and one batch connection is
// killed. The lane dials again, Redis accepts the TCP connection and
// refuses it; the lane stays out (with backoff) while the other serves,
// so 400 sequential purchases all succeed.
func TestMaxClientsLane(t *testing.T) {
	obs := &refusalCounter{}
	eng, srv := ownRedis(t, transport.PoolConfig{}, transport.BatcherConfig{Conns: 2, Observer: obs})
	ctx := saletest.Context(t)
	const sales = 400
	id := saletest.Product(t, eng, 50+sales)
	for i := range 50 {
		if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("warm", i)}); res.Status != wire.StatusSuccess {
			t.Fatalf("before: %s %s %v", res.Status, res.Code, res.Err)
		}
	}
	rc := redistest.Conn(t, srv.Addr)
	list, err := redis.String(rc.Do("CLIENT", "LIST"))
	if err != nil {
		t.Fatal(err)
	}
	var batchConn string
	lines := strings.Split(strings.TrimSpace(list), "\n")
	for _, l := range lines {
		if strings.Contains(l, "cmd=evalsha") {
			batchConn = strings.TrimPrefix(strings.Fields(l)[0], "id=")
		}
	}
	if batchConn == "" {
		t.Fatalf("no batch connection in\n%s", list)
	}
	saletest.Do(t, rc, "CONFIG", "SET", "maxclients", len(lines)-1)
	saletest.Do(t, rc, "CLIENT", "KILL", "ID", batchConn)
	time.Sleep(1500 * time.Millisecond) // the idle probe finds the connection dead; the lane redials, refused
	counts := map[string]int{}
	for i := range sales {
		res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)})
		k := res.Status.String() + " " + res.Code
		if counts[k]++; res.Status != wire.StatusSuccess && counts[k] == 1 {
			t.Errorf("purchase %d: %s %s %v", i, res.Status, res.Code, res.Err)
		}
	}
	if counts[wire.StatusSuccess.String()+" "] != sales {
		t.Errorf("%v, want %d SUCCESS", counts, sales)
	}
	if n := obs.n[transport.CauseMaxClients].Load(); n == 0 {
		t.Error("no maxclients refusal counted")
	}
	if err := eng.Ping(ctx); err != nil {
		t.Errorf("Ping with one lane serving: %v", err)
	}
}

// refusingAfterPing is a fake Redis connection that answers PING (so it
// passes the check of a new connection) and refuses the next command as a
// Redis at maxclients does, then closes.
func refusingAfterPing(nc net.Conn) {
	answerWith(nc, func(args []string) (string, bool) {
		if strings.EqualFold(args[0], "PING") {
			return "+PONG\r\n", true
		}
		return "-ERR max number of clients reached\r\n", false
	})
}

// TestMaxClientsRefusalRetried: a call a batch connection carried and
// Redis refused with maxclients (a refusal of that connection: the call
// did not run) is sent again on another connection within its deadline,
// and sells, once.
func TestMaxClientsRefusalRetried(t *testing.T) {
	srv := redistest.StartTestServer(t)
	pool := transport.NewPool(transport.PoolConfig{Addr: srv.Addr, Timeout: time.Second})
	t.Cleanup(func() { pool.Close() })
	refusing := saletest.Loopback(t, refusingAfterPing)
	obs := &refusalCounter{}
	b := transport.NewBatcher(pool, transport.BatcherConfig{Conns: 1, Observer: obs,
		Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "tcp", refusing)
		}})
	t.Cleanup(func() { b.Close() })
	ctx := saletest.Context(t)
	id := saletest.Product(t, engine.New(pool), 10)
	eng := engine.New(b)
	for i := range 3 {
		if res := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)}); res.Status != wire.StatusSuccess {
			t.Fatalf("purchase %d: %s %s %v, want SUCCESS on another connection", i, res.Status, res.Code, res.Err)
		}
	}
	if n := obs.n[transport.CauseMaxClients].Load(); n == 0 {
		t.Error("no maxclients refusal counted")
	}
	st, err := eng.Status(ctx, id)
	if err != nil || st.Remaining != 7 || st.Buyers != 3 {
		t.Errorf("status %+v, %v; want 3 sold once each", st, err)
	}
}
