package commands

import (
	"bufio"
	"context"
	"math"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// TestSummarise checks the percentiles of a known distribution, 1..100000
// µs once each, within the histograms' precision (3 significant figures).
func TestSummarise(t *testing.T) {
	h := newHistogram()
	for v := int64(100000); v >= 1; v-- {
		if err := h.RecordValue(v); err != nil {
			t.Fatal(err)
		}
	}
	got := summarise(h)
	near := func(name string, got time.Duration, wantUS float64) {
		t.Helper()
		if g := float64(got) / 1e3; math.Abs(g-wantUS) > wantUS*0.001+1 {
			t.Errorf("%s = %.0f µs, want %.0f µs within 0.1%%", name, g, wantUS)
		}
	}
	if got.Count != 100000 {
		t.Errorf("Count = %d", got.Count)
	}
	near("min", got.Min, 1)
	near("mean", got.Mean, 50000.5)
	near("p50", got.P50, 50000)
	near("p90", got.P90, 90000)
	near("p95", got.P95, 95000)
	near("p99", got.P99, 99000)
	near("p99.9", got.P999, 99900)
	near("max", got.Max, 100000)
	if summarise(newHistogram()) != (Latencies{}) {
		t.Error("summarise of an empty histogram is not zero")
	}
}

// TestMergeHistograms: latencies spread over workers' histograms merge into
// what one histogram of them all says.
func TestMergeHistograms(t *testing.T) {
	shards := make([]histShard, 7)
	for i := range shards {
		shards[i].h = newHistogram()
	}
	one := newHistogram()
	for i := int64(0); i < 50000; i++ {
		v := latencyUS(time.Duration(i*i%9_999_991) * time.Microsecond / 7)
		shards[i%7].record([]int64{v})
		one.RecordValue(v)
	}
	merged := mergeHistograms(shards)
	if got, want := summarise(merged), summarise(one); got != want {
		t.Errorf("merged %+v, want %+v", got, want)
	}
	if merged.TotalCount() != 50000 {
		t.Errorf("merged %d values", merged.TotalCount())
	}
}

func TestLatencyUS(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int64
	}{{-time.Second, 0}, {999, 0}, {1500, 1}, {time.Second, 1e6}, {time.Hour, histHighest}} {
		if got := latencyUS(tc.d); got != tc.want {
			t.Errorf("latencyUS(%s) = %d, want %d", tc.d, got, tc.want)
		}
	}
}

// TestPurchaseEncoder: the frames bench writes are those wire.AppendPurchase
// writes.
func TestPurchaseEncoder(t *testing.T) {
	signer, err := engine.NewSigner([]byte("0123456789abcdef0123456789abcdef"))
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []loadConfig{
		{Product: "iphone15", UserPrefix: "user", Quantity: 1},
		{Product: "p", UserPrefix: "u", Quantity: 3, Users: 7},
		{Product: `odd "one"`, UserPrefix: "ü\u2028\\\t\xff", Quantity: 1},
		{Product: "iphone15", UserPrefix: "user", Quantity: 2, Users: 5, Tokens: &userTokens{}},
		{Product: "iphone15", UserPrefix: "user", Quantity: 1},
	} {
		if cfg.Tokens != nil {
			cfg.Tokens = newUserTokens(signer, cfg)
		}
		e := newPurchaseEncoder(cfg)
		var buf []byte
		for _, k := range []int64{0, 1, 9, 10, 12345, math.MaxInt64} {
			buf = e.appendFrame(buf[:0], k)
			user := k
			if cfg.Users > 0 {
				user = k % int64(cfg.Users)
			}
			req := wire.PurchaseRequest{ProductID: cfg.Product, UserID: cfg.UserPrefix + "_" + strconv.FormatInt(user, 10)}
			if cfg.Quantity != 1 {
				req.Quantity = cfg.Quantity
			}
			cfg.Tokens.sign(&req, user)
			want := wire.AppendFrame(nil, wire.TypePurchase, wire.AppendPurchase(nil, req))
			if string(buf) != string(want) {
				t.Errorf("request %d of %+v:\n got %q\nwant %q", k, cfg, buf, want)
			}
		}
	}
}

func TestPurchaseEncoderAllocs(t *testing.T) {
	e := newPurchaseEncoder(loadConfig{Product: "iphone15", UserPrefix: "user", Quantity: 1})
	buf := make([]byte, 0, 1024)
	k := int64(0)
	if n := testing.AllocsPerRun(100, func() { buf = e.appendFrame(buf[:0], k); k++ }); n != 0 {
		t.Errorf("appendFrame allocates %v times", n)
	}
	p := []byte(`{"status":"SUCCESS","remaining_stock":42,"quantity":1,"order_id":"1764108000123-0"}`)
	if n := testing.AllocsPerRun(100, func() { quickAnswer(p) }); n != 0 {
		t.Errorf("quickAnswer allocates %v times", n)
	}
}

var quickAnswerCases = []string{
	`{"status":"SUCCESS","remaining_stock":42,"quantity":1,"order_id":"1764108000123-0"}`,
	`{"status":"SUCCESS","remaining_stock":0,"quantity":25,"order_id":"1-0"}`,
	`{"status":"SUCCESS"}`,
	`{"status":"SOLD_OUT"}`,
	`{"status":"INSUFFICIENT_STOCK","remaining_stock":2}`,
	`{"status":"ALREADY_PURCHASED","held":1,"limit":1}`,
	`{"status":"NOT_STARTED","start":"2026-11-27T09:00:00Z"}`,
	`{"status":"ENDED","end":"2026-11-27T10:00:00Z"}`,
	`{"status":"RATE_LIMITED","retry_after_ms":180}`,
	`{"status":"UNAUTHORIZED","error":"token expired"}`,
	`{"quantity":-3,"status":"SUCCESS","status":"SOLD_OUT"}`,
	// Left to wire.DecodeResponse:
	`{"status":"ERROR","code":"INVALID_REQUEST","error":"invalid json"}`,
	`{"status":"WHATEVER"}`,
	`{"status":""}`,
	`{"quantity":1}`,
	`{}`,
	`{"status":"SUCCESS","quantity":1.0}`,
	`{"status":"SUCCESS","quantity":1e2}`,
	`{"status":"SUCCESS","quantity":01}`,
	`{"status":"SUCCESS","quantity":99999999999999999999}`,
	`{"status":"SUCCESS","quantity":"1"}`,
	`{"status":"SUCCESS","quantity":null}`,
	`{"status":"SUCC\u0045SS"}`,
	`{"Status":"SUCCESS"}`,
	`{"status":"SUCCESS","extra":true}`,
	`{"status":"SUCCESS", "quantity":1}`,
	`{"status":"SUCCESS"} `,
	`{"status":"SUCCESS"}{}`,
	`{"status":"SUCCESS",}`,
	`{"status":"SUCCESS"`,
	`{"status":"SUCCESS","order_id":5}`,
	`{"status":"SUCCESS","error":"a\"b"}`,
	`null`,
	``,
}

// TestQuickAnswer: what quickAnswer accepts, wire.DecodeResponse reads the
// same way.
func TestQuickAnswer(t *testing.T) {
	quick := 0
	for _, p := range quickAnswerCases {
		if checkQuickAnswer(t, []byte(p)) {
			quick++
		}
	}
	if quick != 11 {
		t.Errorf("quickAnswer took %d of the cases, want 11", quick)
	}
}

func FuzzQuickAnswer(f *testing.F) {
	for _, p := range quickAnswerCases {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, p []byte) { checkQuickAnswer(t, p) })
}

func checkQuickAnswer(t *testing.T, p []byte) bool {
	t.Helper()
	s, q, ok := quickAnswer(p)
	if !ok {
		return false
	}
	var r wire.Response
	if err := wire.DecodeResponse(p, &r); err != nil {
		t.Errorf("quickAnswer took %q, DecodeResponse: %v", p, err)
		return true
	}
	if s.String() != r.Status || s == engine.StatusError || q != r.Quantity {
		t.Errorf("quickAnswer(%q) = %s, %d; DecodeResponse: %s, %d", p, s, q, r.Status, r.Quantity)
	}
	return true
}

func TestProgressLine(t *testing.T) {
	for _, tc := range []struct {
		done    int64
		total   int
		elapsed time.Duration
		limit   time.Duration
		rate    float64
		want    string
	}{
		{0, 200000, 0, 0, 0, "[>                             ]   0%  0/200000 req  0 req/s"},
		{66000, 200000, time.Second, 0, 85123.4, "[=========>                    ]  33%  66000/200000 req  85123 req/s"},
		{166000, 0, 3300 * time.Millisecond, 10 * time.Second, 50012, "[=========>                    ]  33%  3.3s/10s  166000 req  50012 req/s"},
		{200000, 200000, 2 * time.Second, 0, 1, "[==============================] 100%  200000/200000 req  1 req/s"},
		{10, 100, 15 * time.Second, 10 * time.Second, 1, "[==============================] 100%  15s/10s  10/100 req  1 req/s"},
	} {
		if got := progressLine(tc.done, tc.total, tc.elapsed, tc.limit, tc.rate); got != tc.want {
			t.Errorf("progressLine(%d, %d, %s, %s, %v)\n got %q\nwant %q", tc.done, tc.total, tc.elapsed, tc.limit, tc.rate, got, tc.want)
		}
	}
}

// fakeServer answers purchases in order without Redis: SOLD_OUT, or what
// answer says for the n-th frame of a connection (close: drop it).
func fakeServer(t *testing.T, answer func(n int) (payload string, close bool)) string {
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
			go func() {
				defer nc.Close()
				rd := wire.NewReader(nc, 0)
				bw := bufio.NewWriter(nc)
				for n := 0; ; n++ {
					if _, err := rd.Next(); err != nil {
						return
					}
					p, drop := answer(n)
					if drop {
						bw.Flush()
						return
					}
					bw.Write(wire.AppendFrame(nil, wire.TypePurchaseResponse, []byte(p)))
					if rd.Buffered() == 0 {
						if bw.Flush() != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

func testLoadConfig(addr string) loadConfig {
	return loadConfig{
		Addr: addr, Product: "p", UserPrefix: "u", Quantity: 1, Timeout: 5 * time.Second,
		Requests: 1000, Conns: 4, Pipeline: 8,
		Dial: dialFunc(addr, 5*time.Second, nil),
	}
}

// TestRunLoadAccounting: connections that fail with requests in flight
// reconnect, and every request is counted once, answered or failed.
func TestRunLoadAccounting(t *testing.T) {
	addr := fakeServer(t, func(n int) (string, bool) {
		switch {
		case n == 5:
			return `{"status":"ERROR","code":"UNAVAILABLE","error":"redis unavailable"}`, false
		case n == 40:
			return "", true
		case n%3 == 0:
			return `{"status":"SUCCESS","quantity":2,"order_id":"x"}`, false
		}
		return `{"status":"SOLD_OUT"}`, false
	})
	for _, rate := range []float64{0, 20000} {
		cfg := testLoadConfig(addr)
		cfg.Rate = rate
		rep := runLoad(context.Background(), cfg)
		var answered int64
		for _, n := range rep.Statuses {
			answered += n
		}
		if rep.Total != 1000 || answered+rep.Errors != 1000 || rep.Units != 2*rep.Count(engine.StatusSuccess) {
			t.Errorf("rate %v: total %d, answers %v, errors %v, units %d", rate, rep.Total, rep.Statuses, rep.ErrorSet, rep.Units)
		}
		// The dropped connections fail with EOF, or a reset or broken pipe.
		if unavailable := rep.ErrorSet["ERROR UNAVAILABLE: redis unavailable"]; unavailable == 0 || rep.Errors == unavailable {
			t.Errorf("rate %v: error set %v", rate, rep.ErrorSet)
		}
		if rep.Latency.Count != answered+rep.ErrorSet["ERROR UNAVAILABLE: redis unavailable"] {
			t.Errorf("rate %v: %d latencies for %d answers", rate, rep.Latency.Count, answered)
		}
	}
}

// TestRunLoadCap: a server that never answers cannot hold a --duration run
// past --duration + --timeout.
func TestRunLoadCap(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var conns atomic.Int64
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			defer nc.Close()
		}
	}()
	cfg := testLoadConfig(ln.Addr().String())
	cfg.Requests, cfg.Duration, cfg.Timeout = 0, 200*time.Millisecond, 300*time.Millisecond
	start := time.Now()
	rep := runLoad(context.Background(), cfg)
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the run took %s", elapsed)
	}
	// 4 connections × 8 in flight, no answer: each times out.
	if rep.Total == 0 || rep.Errors != rep.Total || len(rep.Statuses) != 0 {
		t.Errorf("total %d, errors %v, statuses %v", rep.Total, rep.ErrorSet, rep.Statuses)
	}
	for msg := range rep.ErrorSet {
		if !strings.Contains(msg, "timeout") && msg != errRunCapped.Error() {
			t.Errorf("error %q", msg)
		}
	}
}

// TestRunLoadStop: once ctx is done no new request is taken, and the run
// ends with the answers to those in flight.
func TestRunLoadStop(t *testing.T) {
	addr := fakeServer(t, func(int) (string, bool) {
		time.Sleep(time.Millisecond)
		return `{"status":"SOLD_OUT"}`, false
	})
	for _, rate := range []float64{0, 1000} {
		cfg := testLoadConfig(addr)
		cfg.Requests, cfg.Rate = 0, rate
		cfg.Duration = time.Hour
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		rep := runLoad(ctx, cfg)
		cancel()
		if rep.Total == 0 || rep.Errors != 0 || rep.Count(engine.StatusSoldOut) != rep.Total {
			t.Errorf("rate %v: total %d, statuses %v, errors %v", rate, rep.Total, rep.Statuses, rep.ErrorSet)
		}
	}
}
