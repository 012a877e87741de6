package loadgen

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

	"github.com/flashsale/flashsale/internal/testkit/saletest"
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

// fakeServer answers purchases in order without Redis: SOLD_OUT, or what
// answer says for the n-th frame of a connection (close: drop it).
func fakeServer(t *testing.T, answer func(n int) (payload string, close bool)) string {
	t.Helper()
	return saletest.Loopback(t, func(nc net.Conn) {
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
	})
}

func testLoadConfig(addr string) Config {
	return Config{
		Addrs: []string{addr}, Product: "p", UserPrefix: "u", Quantity: 1, Timeout: 5 * time.Second,
		Requests: 1000, Conns: 4, Pipeline: 8,
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
		rep := New(cfg).Run(context.Background())
		var answered int64
		for _, n := range rep.Statuses {
			answered += n
		}
		if rep.Total != 1000 || answered+rep.Errors != 1000 || rep.Units != 2*rep.Count(wire.StatusSuccess) {
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
	rep := New(cfg).Run(context.Background())
	if elapsed := time.Since(start); elapsed > 10*time.Second {
		t.Errorf("the run took %s", elapsed)
	}
	// 4 connections × 8 in flight, no answer: each times out.
	if rep.Total == 0 || rep.Errors != rep.Total || len(rep.Statuses) != 0 {
		t.Errorf("total %d, errors %v, statuses %v", rep.Total, rep.ErrorSet, rep.Statuses)
	}
	for msg := range rep.ErrorSet {
		if !strings.Contains(msg, "timeout") && msg != ErrRunCapped.Error() {
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
		rep := New(cfg).Run(ctx)
		cancel()
		if rep.Total == 0 || rep.Errors != 0 || rep.Count(wire.StatusSoldOut) != rep.Total {
			t.Errorf("rate %v: total %d, statuses %v, errors %v", rate, rep.Total, rep.Statuses, rep.ErrorSet)
		}
	}
}

// TestRunGivesUp: connections to a server that refuses them for a timeout
// give up instead of spending the run on failed dials.
func TestRunGivesUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	cfg := testLoadConfig(dead)
	cfg.Requests, cfg.Timeout = 1000000, 100*time.Millisecond
	res := New(cfg).Run(context.Background())
	if res.GaveUp != cfg.Conns || res.Total == 0 || res.Total == int64(cfg.Requests) || res.Errors != res.Total {
		t.Errorf("gave up %d, total %d, errors %d", res.GaveUp, res.Total, res.Errors)
	}
}

// TestRunSpreadsAndSamples: connections go round the servers, every
// SUCCESS's order id is kept, and the timeline samples every answer.
func TestRunSpreadsAndSamples(t *testing.T) {
	var hits [2]atomic.Int64
	addrs := make([]string, 2)
	for i := range addrs {
		addrs[i] = fakeServer(t, func(n int) (string, bool) {
			hits[i].Add(1)
			if n%2 == 0 {
				return `{"status":"SUCCESS","quantity":1,"order_id":"o` + strconv.Itoa(n) + `"}`, false
			}
			return `{"status":"SOLD_OUT"}`, false
		})
	}
	cfg := testLoadConfig(addrs[0])
	cfg.Addrs, cfg.Timeline = addrs, true
	res := New(cfg).Run(context.Background())
	if hits[0].Load() == 0 || hits[1].Load() == 0 || hits[0].Load()+hits[1].Load() != 1000 {
		t.Errorf("requests per server: %d, %d", hits[0].Load(), hits[1].Load())
	}
	if int64(len(res.OrderIDs)) != res.Count(wire.StatusSuccess) || len(res.Samples) != 1000 {
		t.Errorf("%d order ids for %d successes, %d samples", len(res.OrderIDs), res.Count(wire.StatusSuccess), len(res.Samples))
	}
}

func TestSampler(t *testing.T) {
	s := sampler{limit: 100}
	for i := range 10000 {
		s.add(Sample{At: time.Duration(i)})
	}
	if len(s.kept) > 100 || len(s.kept) < 50 {
		t.Fatalf("kept %d samples, limit 100", len(s.kept))
	}
	// Evenly spread: one every stride.
	for i, x := range s.kept {
		if x.At != time.Duration(int64(i)*s.stride) {
			t.Fatalf("sample %d at %d, stride %d", i, x.At, s.stride)
		}
	}
}
