package commands

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// TestAdminOnCluster is the reproduction: admin pointed at one
// node of a 3-master cluster, by REDIS_ADDR (detected) or by
// --redis-cluster, reaches every product's master; no MOVED.
func TestAdminOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	seed := c.Addrs()[0]
	var ids []string
	for i := range 6 { // spread over the masters
		ids = append(ids, fmt.Sprintf("%s-%d", redistest.Product(t), i))
	}
	for _, tc := range []struct {
		name string
		env  func()
	}{
		{"detected at REDIS_ADDR", func() { t.Setenv("REDIS_ADDR", seed); t.Setenv("FLASHSALE_REDIS_CLUSTER", "") }},
		{"--redis-cluster", func() {
			t.Setenv("REDIS_ADDR", "127.0.0.1:1")
			t.Setenv("FLASHSALE_REDIS_CLUSTER", strings.Join(c.Addrs()[1:], ","))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env()
			for _, id := range ids {
				if out := mustRun(t, "admin", "init", id, "3"); !strings.Contains(out, "initialized with 3 units") {
					t.Errorf("init %s printed %q", id, out)
				}
				if out := mustRun(t, "admin", "status", id); !strings.Contains(out, "Remaining Stock:   3") {
					t.Errorf("status %s printed %q", id, out)
				}
			}
			out := mustRun(t, "admin", "verify")
			for _, id := range ids {
				if !strings.Contains(out, "✓ "+id+":") {
					t.Errorf("verify with no ID left out %s:\n%s", id, out)
				}
			}
		})
	}
	masters := map[string]bool{}
	for _, id := range ids {
		m, err := c.MasterOf(t.Context(), engine.KeysFor(id).Stock)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr] = true
	}
	if len(masters) < 2 {
		t.Errorf("the products all landed on %v: the test does not cross masters", masters)
	}

	// serve detects the cluster at --redis-addr; watch (no ID) hears the
	// sales of products on every master: PUBLISH reaches every node.
	t.Setenv("REDIS_ADDR", seed)
	t.Setenv("FLASHSALE_REDIS_CLUSTER", "")
	addr := startServe(t, seed)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := goApp(t, ctx, "admin", "watch", "--count", "6")
	cl := dialClient(t, addr)
	for i := 0; ; i++ {
		select {
		case r := <-done:
			if r.err != nil || strings.Count(r.out, "order ") != 6 {
				t.Fatalf("watch: %v\n%s", r.err, r.out)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
		if i >= 50 {
			t.Fatal("watch did not see 6 sales")
		}
		id := ids[i%len(ids)]
		if out, err := cl.buy(wire.PurchaseRequest{ProductID: id, UserID: fmt.Sprint("w", i)}); err != nil || !strings.Contains(out, "SUCCESS") {
			t.Fatalf("buy %s: %s, %v", id, out, err)
		}
	}
}

func TestDemoOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	out, err := runApp(t, "demo", "-n", "500", "-c", "10", "--log-level", "error", "--redis-cluster", c.Addrs()[1])
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out)
	}
	for _, want := range []string{"Redis Cluster at", "Successful:        100\n", "Oversell Check:    ✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// TestAdminShardedOnCluster: a product spread over shards is one product
// to admin and to clients of serve: init --shards, status sums the shards,
// every unit sells (customers whose home shard ran dry get units moved
// there), SOLD_OUT after the last, verify --repair OK.
func TestAdminShardedOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	seed := c.Addrs()[0]
	t.Setenv("REDIS_ADDR", seed)
	t.Setenv("FLASHSALE_REDIS_CLUSTER", "")
	id := redistest.Product(t)
	if out := mustRun(t, "admin", "init", "--shards", "3", id, "12"); !strings.Contains(out, "initialized with 12 units over 3 shards") {
		t.Fatalf("init printed %q", out)
	}
	if out := mustRun(t, "admin", "status", id); !strings.Contains(out, "Remaining Stock:   12") || !strings.Contains(out, "Shards:            3") {
		t.Fatalf("status printed %q", out)
	}
	if out := mustRun(t, "admin", "verify"); !strings.Contains(out, "✓ "+id+":") || strings.Contains(out, id+"#") {
		t.Fatalf("verify with no ID: want the one product, not its shards:\n%s", out)
	}
	cl := dialClient(t, startServe(t, seed))
	for i := range 12 {
		if out, err := cl.buy(wire.PurchaseRequest{ProductID: id, UserID: fmt.Sprint("s", i)}); err != nil || !strings.Contains(out, "SUCCESS") {
			t.Fatalf("buy %d of 12: %s, %v", i+1, out, err)
		}
	}
	if out, err := cl.buy(wire.PurchaseRequest{ProductID: id, UserID: "late"}); err != nil || !strings.Contains(out, "SOLD_OUT") {
		t.Fatalf("buy after the last unit: %s, %v", out, err)
	}
	if out := mustRun(t, "admin", "verify", "--repair", id); !strings.Contains(out, "✓ "+id+": OK (12 orders, 12 units sold") {
		t.Fatalf("verify --repair printed %q", out)
	}
	// Restock and buyers act on the product: the late customer buys.
	if out := mustRun(t, "admin", "restock", id, "3"); !strings.Contains(out, "3 remaining, initial 15") {
		t.Fatalf("restock printed %q", out)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		out, err := cl.buy(wire.PurchaseRequest{ProductID: id, UserID: "late"})
		if err == nil && strings.Contains(out, "SUCCESS") {
			break
		}
		if err != nil || !strings.Contains(out, "SOLD_OUT") || time.Now().After(deadline) {
			t.Fatalf("buy after the restock: %s, %v", out, err) // SOLD_OUT only until the announcement arrives
		}
	}
	if out := mustRun(t, "admin", "buyers", "--limit", "0", id); !strings.Contains(out, "(13 total)") || !strings.Contains(out, "late") {
		t.Fatalf("buyers printed %q", out)
	}
	if out := mustRun(t, "admin", "verify", id); !strings.Contains(out, "✓ "+id+": OK (13 orders, 13 units sold") {
		t.Fatalf("verify after the restock printed %q", out)
	}
}
