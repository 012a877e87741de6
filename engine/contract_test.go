package engine_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// scriptLog records the scripts run through it, by name, with the error
// each call's reply decoded into (nil for a reply the engine read).
type scriptLog struct {
	engine.Redis
	mu  sync.Mutex
	ran map[string]int
}

func (l *scriptLog) Eval(ctx context.Context, s *engine.Script, keysAndArgs ...any) (any, error) {
	l.mu.Lock()
	l.ran[s.Name()]++
	l.mu.Unlock()
	return l.Redis.Eval(ctx, s, keysAndArgs...)
}

// TestScriptContract loads every script (SCRIPT LOAD on the test Redis)
// and runs each through the engine, which calls it by its spec (its keys
// from KeysFor, its declared arguments) and decodes its reply with the
// decoder its operation uses: a reply of another shape fails the
// operation. Every script must have run at least once.
func TestScriptContract(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool, addr := newPool(t)
	if err := pool.Load(ctx, engine.Scripts()...); err != nil {
		t.Fatalf("SCRIPT LOAD: %v", err)
	}
	c := redistest.Conn(t, addr)
	for _, s := range engine.Scripts() {
		if n, err := redis.Ints(c.Do("SCRIPT", "EXISTS", s.Hash())); err != nil || !slices.Equal(n, []int{1}) {
			t.Errorf("script %s not cached after SCRIPT LOAD: %v %v", s.Name(), n, err)
		}
	}
	log := &scriptLog{Redis: pool, ran: map[string]int{}}
	eng := engine.New(log)
	for _, step := range contractSteps(redistest.Product(t)) {
		if err := step.run(ctx, eng); err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
	}
	for _, s := range engine.Scripts() {
		if s.Merge == nil && log.ran[s.Name()] == 0 {
			t.Errorf("script %s never ran", s.Name())
		}
	}
}

type contractStep struct {
	name string
	run  func(ctx context.Context, eng *engine.Engine) error
}

// contractSteps are operations on product id (and id-s, sharded) that
// between them run every script, each finding what it needs.
func contractSteps(id string) []contractStep {
	sharded := id + "-s"
	var order, ticket string
	return []contractStep{
		{"init", func(ctx context.Context, e *engine.Engine) error {
			return e.Init(ctx, id, 5, engine.WithPerUserLimit(0))
		}},
		{"purchase", func(ctx context.Context, e *engine.Engine) error {
			r := e.Purchase(ctx, engine.Request{ProductID: id, UserID: "u", Quantity: 2, RequestID: "r"})
			order = r.OrderID
			return r.Err
		}},
		{"status", func(ctx context.Context, e *engine.Engine) error { _, err := e.Status(ctx, id); return err }},
		{"buyers", func(ctx context.Context, e *engine.Engine) error { _, _, err := e.Buyers(ctx, id, 0); return err }},
		{"orders", func(ctx context.Context, e *engine.Engine) error { _, err := e.Orders(ctx, id, 0); return err }},
		{"release", func(ctx context.Context, e *engine.Engine) error { _, err := e.Release(ctx, id, order); return err }},
		{"hold", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.SetHold(ctx, id, time.Minute)
			return err
		}},
		{"reserve", func(ctx context.Context, e *engine.Engine) error {
			r := e.Purchase(ctx, engine.Request{ProductID: id, UserID: "u", Quantity: 1})
			order = r.OrderID
			return r.Err
		}},
		{"confirm", func(ctx context.Context, e *engine.Engine) error {
			return e.Confirm(ctx, engine.OrderRequest{ProductID: id, UserID: "u", OrderID: order}).Err
		}},
		{"sweep", func(ctx context.Context, e *engine.Engine) error { _, err := e.Sweep(ctx, id); return err }},
		{"restock", func(ctx context.Context, e *engine.Engine) error { _, _, err := e.Restock(ctx, id, 1); return err }},
		{"room", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.SetRoom(ctx, id, engine.Room{Rate: 1000})
			return err
		}},
		{"join", func(ctx context.Context, e *engine.Engine) error {
			a := e.Join(ctx, engine.JoinRequest{ProductID: id, UserID: "w"})
			ticket = a.Ticket
			return a.Err
		}},
		{"poll", func(ctx context.Context, e *engine.Engine) error { return e.Poll(ctx, id, ticket).Err }},
		{"room info", func(ctx context.Context, e *engine.Engine) error {
			r, err := e.RoomInfo(ctx, id)
			if err == nil && (r.Joined != 1 || r.Rate != 1000 || !r.Open()) {
				err = fmt.Errorf("room info %+v, want 1 joined, rate 1000, open", r)
			}
			return err
		}},
		{"close", func(ctx context.Context, e *engine.Engine) error { return e.Close(ctx, id) }},
		{"verify", func(ctx context.Context, e *engine.Engine) error { _, err := e.Verify(ctx, id); return err }},
		{"reset", func(ctx context.Context, e *engine.Engine) error { _, _, err := e.Reset(ctx, id); return err }},
		{"delete", func(ctx context.Context, e *engine.Engine) error { return e.Delete(ctx, id) }},
		{"init sharded", func(ctx context.Context, e *engine.Engine) error {
			return e.InitSharded(ctx, sharded, 2, 2, engine.WithPerUserLimit(0))
		}},
		{"purchase with a transfer", func(ctx context.Context, e *engine.Engine) error {
			r := e.Purchase(ctx, engine.Request{ProductID: sharded, UserID: "u", Quantity: 2})
			order = r.OrderID
			return r.Err
		}},
		{"release sharded", func(ctx context.Context, e *engine.Engine) error {
			_, err := e.Release(ctx, sharded, order)
			return err
		}},
		{"restock sharded", func(ctx context.Context, e *engine.Engine) error { _, _, err := e.Restock(ctx, sharded, 3); return err }},
		{"verify sharded", func(ctx context.Context, e *engine.Engine) error { _, err := e.Verify(ctx, sharded); return err }},
		{"delete sharded", func(ctx context.Context, e *engine.Engine) error { return e.Delete(ctx, sharded) }},
	}
}
