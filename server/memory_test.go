package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// holdingRedis is an engine.AsyncRedis that holds every script until
// release, so that every frame a client sent is in flight at once.
type holdingRedis struct {
	mu   sync.Mutex
	held []func(any, error)
}

func (h *holdingRedis) EvalAsync(_ time.Time, _ *engine.Script, done func(any, error), _ ...any) {
	h.mu.Lock()
	h.held = append(h.held, done)
	h.mu.Unlock()
}

func (h *holdingRedis) Eval(context.Context, *engine.Script, ...any) (any, error) {
	return nil, engine.ErrUnavailable
}
func (h *holdingRedis) Ping(context.Context) error                             { return nil }
func (h *holdingRedis) SlotOf(context.Context, string) (int, string, error)    { return 0, "", nil }
func (h *holdingRedis) Scan(context.Context, string, func(string) error) error { return nil }
func (h *holdingRedis) Subscribe(ctx context.Context, _ string, _ func([]byte)) error {
	<-ctx.Done()
	return nil
}

func (h *holdingRedis) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// release answers every held script with a sale.
func (h *holdingRedis) release() {
	h.mu.Lock()
	held := h.held
	h.held = nil
	h.mu.Unlock()
	for i, done := range held {
		done([]any{int64(1), int64(i), []byte("1-0"), int64(1)}, nil)
	}
}

// collected is the memory statistics after a full collection, twice:
// sync.Pool keeps a victim cache through one, and the collector halves a
// stack that uses under a quarter of itself.
func collected() runtime.MemStats {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 { return collected().HeapAlloc }

// idleConnBound is the bound docs/operations.md states on what an idle connection keeps
// on the heap, whatever it carried before (see keptBuffer, keptSlots in
// conn.go): the 2 KiB read buffer, at most 1 KiB of frame buffer, 8 spare
// slots of at most 1 KiB payload each and their structs, the in-flight
// queue's array, with room to spare.
const idleConnBound = 32 << 10

// TestServerMemoryReturned: 16 connections each pipeline 128 frames of
// 64 KiB (8 KiB under the race detector), all held in flight, then answered; once idle, the connections
// give the memory back: the heap is within 16 × idleConnBound (plus
// 1 MiB for the rest of the process) of what it was before.
func TestServerMemoryReturned(t *testing.T) {
	const (
		conns  = 16
		frames = 128
	)
	size := wire.DefaultMaxPayload
	if raceEnabled {
		size = 8 << 10 // still far above what a connection may keep
	}
	h := &holdingRedis{}
	srv := startServer(t, engine.New(h), server.Config{MaxInFlight: frames, MaxPayload: wire.DefaultMaxPayload})
	t.Cleanup(h.release) // before the server stops: a failed test leaves nothing held
	// Padded with white space: the decoder refuses a member it does not know.
	prefix := `{"product_id":"p","user_id":"u"`
	payload := prefix + strings.Repeat(" ", size-len(prefix)-1) + `}`
	frame := wire.AppendFrame(nil, wire.TypePurchase, []byte(payload))
	clients := make([]*client, conns)
	ping := wire.AppendFrame(nil, wire.TypePing, nil)
	for i := range clients {
		clients[i] = dial(t, srv.addr)
		clients[i].send(ping)
		clients[i].mustNext()
	}
	before := heapInUse()

	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			for range frames {
				if _, err := c.nc.Write(frame); err != nil {
					t.Errorf("write: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	for deadline := time.Now().Add(testTimeout); h.count() < conns*frames; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d frames reached the engine", h.count(), conns*frames)
		}
	}
	peak := heapInUse()
	frame = nil
	h.release()
	for _, c := range clients {
		for range frames {
			if f := c.mustNext(); f.Type != wire.TypePurchaseResponse {
				t.Fatalf("answer of type %#x", byte(f.Type))
			}
		}
	}
	// The answers are read: the writers have recycled their slots.
	for _, c := range clients {
		c.send(ping)
		c.mustNext()
	}
	after := heapInUse()
	grown := int64(after) - int64(before)
	t.Logf("heap: %d KiB before, %d KiB with %d×%d frames of %d KiB in flight, %d KiB once idle (%+d KiB, %d B per connection)",
		before>>10, peak>>10, conns, frames, size>>10, after>>10, grown>>10, grown/conns)
	if limit := int64(conns*idleConnBound + 1<<20); grown > limit {
		t.Fatalf("idle connections keep %d KiB more than before, want at most %d KiB", grown>>10, limit>>10)
	}
}

// stackInUse is the goroutine stack memory after a full collection.
func stackInUse() uint64 { return collected().StackInuse }

// idleStackBound is what the goroutine of an idle TLV connection may keep
// as stack: 4 KiB is the size a parked reader needs (2 KiB is too small
// for the frames of a blocking read), 8 KiB is the regression this test
// is for. See serveConn.
const idleStackBound = 6 << 10

// TestIdleConnStack: connections that each made a sale, a sold-out
// purchase and a PING, through the batcher as serve runs them, then went
// idle keep at most idleStackBound of goroutine stack each.
func TestIdleConnStack(t *testing.T) {
	if raceEnabled {
		redistest.Skip(t, redistest.NeedNoRace, "the race detector's instrumentation makes every frame bigger")
	}
	const conns = 256
	pool, _ := saletest.Pool(t)
	b := transport.NewBatcher(pool, transport.BatcherConfig{})
	t.Cleanup(func() { b.Close() })
	eng := engine.New(b)
	srv := startServer(t, eng, server.Config{})
	inStock := newProduct(t, eng, conns, engine.WithPerUserLimit(0))
	soldOut := newProduct(t, eng, 0)
	ping := wire.AppendFrame(nil, wire.TypePing, nil)
	goroutines := runtime.NumGoroutine()
	before := stackInUse()

	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = dial(t, srv.addr)
	}
	for i, c := range clients {
		user := fmt.Sprintf("u%d", i)
		c.send(purchaseFrame(inStock, user))
		c.send(purchaseFrame(soldOut, user))
		c.send(ping)
	}
	for _, c := range clients {
		for range 3 {
			c.mustNext()
		}
	}
	// Each connection is down to its reader once its writer has exited.
	for deadline := time.Now().Add(testTimeout); runtime.NumGoroutine() > goroutines+conns; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d", runtime.NumGoroutine(), goroutines+conns)
		}
	}
	after := stackInUse()
	per := (int64(after) - int64(before)) / conns
	t.Logf("stacks: %d KiB before, %d KiB with %d idle connections (%d B per connection)", before>>10, after>>10, conns, per)
	if per > idleStackBound {
		t.Fatalf("an idle connection keeps %d B of stack, want at most %d", per, idleStackBound)
	}
}
