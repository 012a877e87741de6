package redistest_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// step gives one step of a cluster test its own deadline.
func step(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestSlotKnownValues(t *testing.T) {
	tests := []struct {
		key  string
		want int
	}{
		{"123456789", 0x31C3}, // the CRC-16/XMODEM check value
		{"foo", 12182},
		{"{foo}bar", 12182},
		{"a{foo}b{c}", 12182},
		{"", 0},
	}
	for _, tt := range tests {
		if got := redistest.Slot(tt.key); got != tt.want {
			t.Errorf("Slot(%q) = %d, want %d", tt.key, got, tt.want)
		}
	}
}

func TestCluster(t *testing.T) {
	began := time.Now()
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3, Replicas: 1})
	t.Logf("3 masters + 3 replicas healthy after %v", time.Since(began).Round(time.Millisecond))

	t.Run("slots covered", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		if got := len(c.Addrs()); got != 6 {
			t.Fatalf("%d nodes, want 6", got)
		}
		for _, n := range c.Nodes() {
			_, p, _ := net.SplitHostPort(n.Addr)
			if port, err := strconv.Atoi(p); err != nil || port >= 55535 {
				t.Errorf("%s: port not below 55535, no room for the bus port", n)
			}
			info, err := redis.String(c.Do(ctx, n, "CLUSTER", "INFO"))
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"cluster_state:ok", "cluster_slots_ok:16384", "cluster_known_nodes:6", "cluster_size:3"} {
				if !strings.Contains(info, want+"\r\n") {
					t.Errorf("%s: CLUSTER INFO lacks %s:\n%s", n, want, info)
				}
			}
		}
		masters, err := c.Masters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(masters) != 3 {
			t.Fatalf("masters %v, want 3", masters)
		}
		for _, m := range masters {
			rs, err := c.ReplicasOf(ctx, m)
			if err != nil || len(rs) != 1 {
				t.Errorf("replicas of %s: %v, %v; want one", m, rs, err)
			}
		}
		for _, slot := range []int{0, 5461, 10923, redistest.Slots - 1} {
			if n, err := c.NodeFor(ctx, slot); err != nil || n == nil {
				t.Errorf("NodeFor(%d) = %v, %v", slot, n, err)
			}
		}
	})

	t.Run("Slot equals CLUSTER KEYSLOT", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		n := c.Nodes()[0]
		for _, key := range []string{
			"product:{iphone15}:stock", "product:{iphone15}:users", "{iphone15}",
			"foo", "foo{}{bar}", "foo{{bar}}zap", "foo{bar}{zap}", "{", "}{x}", "é{ü}",
		} {
			want, err := redis.Int(c.Do(ctx, n, "CLUSTER", "KEYSLOT", key))
			if err != nil {
				t.Fatal(err)
			}
			if got := redistest.Slot(key); got != want {
				t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT says %d", key, got, want)
			}
		}
	})

	t.Run("reshard moves a key", func(t *testing.T) {
		ctx := step(t, 20*time.Second)
		key := "product:{iphone15}:stock"
		from, to := setUp(ctx, t, c, key)
		if err := c.Reshard(ctx, redistest.Slot(key), from, to); err != nil {
			t.Fatal(err)
		}
		if got, err := redis.String(c.Do(ctx, to, "GET", key)); err != nil || got != "100" {
			t.Errorf("GET at the new master %s = %q, %v; want 100", to, got, err)
		}
		_, err := c.Do(ctx, from, "GET", key)
		if want := fmt.Sprintf("MOVED %d %s", redistest.Slot(key), to.Addr); err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("GET at the old master: %v, want %s", err, want)
		}
		if n, err := c.MasterOf(ctx, key); err != nil || n != to {
			t.Errorf("MasterOf = %v, %v; want %s", n, err, to)
		}
	})

	t.Run("mid-migration ASK", func(t *testing.T) {
		ctx := step(t, 20*time.Second)
		moved, stays := "product:{ask}:stock", "product:{ask}:sold"
		from, to := setUp(ctx, t, c, moved, stays)
		m, err := c.BeginReshard(ctx, redistest.Slot(moved), from, to)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Move(ctx, moved); err != nil {
			t.Fatal(err)
		}
		if got, err := redis.String(c.Do(ctx, from, "GET", stays)); err != nil || got != "100" {
			t.Errorf("GET of a key not moved yet, at the source = %q, %v", got, err)
		}
		_, err = c.Do(ctx, from, "GET", moved)
		if want := fmt.Sprintf("ASK %d %s", m.Slot, to.Addr); err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("GET of a moved key at the source: %v, want %s", err, want)
		}
		if _, err := c.Do(ctx, to, "GET", moved); err == nil || !strings.Contains(err.Error(), "MOVED") {
			t.Errorf("GET at the target without ASKING: %v, want MOVED", err)
		}
		conn := redistest.Conn(t, to.Addr)
		conn.Send("ASKING")
		conn.Send("GET", moved)
		conn.Flush()
		conn.Receive()
		if got, err := redis.String(conn.Receive()); err != nil || got != "100" {
			t.Errorf("ASKING + GET at the target = %q, %v", got, err)
		}
		if err := m.Finish(ctx); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{moved, stays} {
			if got, err := redis.String(c.Do(ctx, to, "GET", key)); err != nil || got != "100" {
				t.Errorf("GET %s after Finish = %q, %v", key, got, err)
			}
		}
	})

	t.Run("failover promotes a replica", func(t *testing.T) {
		ctx := step(t, 30*time.Second)
		masters, err := c.Masters(ctx)
		if err != nil {
			t.Fatal(err)
		}
		old := masters[0]
		rs, err := c.ReplicasOf(ctx, old)
		if err != nil || len(rs) != 1 {
			t.Fatalf("replicas of %s: %v, %v", old, rs, err)
		}
		if err := c.Failover(ctx, rs[0]); err != nil {
			t.Fatal(err)
		}
		if m, err := c.MasterOfNode(ctx, old); err != nil || m != rs[0] {
			t.Errorf("old master %s follows %v, %v; want %s", old, m, err, rs[0])
		}
		role, err := redis.Values(c.Do(ctx, rs[0], "ROLE"))
		if err != nil || string(role[0].([]byte)) != "master" {
			t.Errorf("ROLE of the promoted replica: %v, %v", role, err)
		}
	})

	t.Run("killed master replaced", func(t *testing.T) {
		ctx := step(t, 30*time.Second)
		killed := time.Now()
		victim, promoted, err := c.KillMasterOf(ctx, "product:{iphone15}:stock")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("automatic failover healthy %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
		if err := c.Restart(ctx, victim); err != nil {
			t.Fatal(err)
		}
		if m, err := c.MasterOfNode(ctx, victim); err != nil || m != promoted {
			t.Errorf("restarted %s follows %v, %v; want %s", victim, m, err, promoted)
		}
	})
}

// setUp writes 100 to each key (one slot) on its master and returns that
// master and another one to move the slot to.
func setUp(ctx context.Context, t *testing.T, c *redistest.Cluster, keys ...string) (from, to *redistest.Node) {
	t.Helper()
	from, err := c.MasterOf(ctx, keys[0])
	if err != nil {
		t.Fatal(err)
	}
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters {
		if m != from {
			to = m
			break
		}
	}
	for _, key := range keys {
		if _, err := c.Do(ctx, from, "SET", key, 100); err != nil {
			t.Fatal(err)
		}
	}
	return from, to
}
