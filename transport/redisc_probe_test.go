package transport_test

import (
	"context"
	"crypto/sha1"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/mna/redisc"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// incr is the probe's script: one key, like flashsale's per-product ones.
const incr = "return redis.call('INCRBY', KEYS[1], ARGV[1])"

// probe is a redisc.Cluster as a transport would build it, with the
// layout and the pools it hands out recorded.
type probe struct {
	*redisc.Cluster
	mu     sync.Mutex
	layout [redisc.HashSlots][]string // master first, then replicas
	pools  map[string]*redis.Pool
}

func newProbe(t *testing.T, startup []string) *probe {
	p := &probe{pools: map[string]*redis.Pool{}}
	p.Cluster = &redisc.Cluster{
		StartupNodes: startup,
		DialOptions: []redis.DialOption{
			redis.DialConnectTimeout(2 * time.Second),
			redis.DialReadTimeout(2 * time.Second),
			redis.DialWriteTimeout(2 * time.Second),
		},
		CreatePool: func(addr string, opts ...redis.DialOption) (*redis.Pool, error) {
			pool := &redis.Pool{
				MaxIdle:     4,
				IdleTimeout: time.Minute,
				DialContext: func(ctx context.Context) (redis.Conn, error) {
					return redis.DialContext(ctx, "tcp", addr, opts...)
				},
			}
			p.mu.Lock()
			p.pools[addr] = pool
			p.mu.Unlock()
			return pool, nil
		},
		// The only way redisc tells which address serves a slot.
		LayoutRefresh: func(_, layout [redisc.HashSlots][]string) {
			p.mu.Lock()
			p.layout = layout
			p.mu.Unlock()
		},
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func (p *probe) addrOf(slot int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.layout[slot]) == 0 {
		return ""
	}
	return p.layout[slot][0]
}

// bound returns a connection bound to key's slot, closed at the end.
func (p *probe) bound(t *testing.T, key string) redis.Conn {
	t.Helper()
	conn := p.Get()
	t.Cleanup(func() { conn.Close() })
	if err := redisc.BindConn(conn, key); err != nil {
		t.Fatal(err)
	}
	return conn
}

// myID asks the node a connection is bound to for its id: a *redisc.Conn
// does not say its address.
func myID(t *testing.T, conn redis.Conn) string {
	t.Helper()
	id, err := redis.String(conn.Do("CLUSTER", "MYID"))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func step(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func isErr(err error, prefix string) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), prefix)
}

// TestRedisc is a probe of what
// github.com/mna/redisc v1.4.0 gives against a real local Redis Cluster
// (see redistest.StartCluster), written to design flashsale's cluster
// transport. It pins down slot binding, pipelining on a bound connection
// (which serves every slot of its node, a call for another node failing
// alone with MOVED), MOVED and ASK as redisc.ParseRedir returns them,
// TRYAGAIN during a migration, NOSCRIPT per node and after a failover,
// what a killed master looks like before a Refresh, and what RetryConn can
// and cannot do.
func TestRedisc(t *testing.T) {
	began := time.Now()
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3, Replicas: 1, NodeTimeout: time.Second})
	t.Logf("3 masters + 3 replicas healthy after %v", time.Since(began).Round(time.Millisecond))
	ctx := step(t, 10*time.Second)
	var rss int
	for _, n := range c.Nodes() {
		info, err := redis.String(c.Do(ctx, n, "INFO", "memory"))
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(info) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory_rss:"); ok {
				b, _ := strconv.Atoi(v)
				rss += b
			}
		}
	}
	t.Logf("resident memory of the 6 nodes: %.1f MiB", float64(rss)/(1<<20))

	// One startup node is enough: Refresh asks it CLUSTER SLOTS.
	p := newProbe(t, c.Addrs()[:1])
	if err := p.Refresh(); err != nil {
		t.Fatal(err)
	}
	// No node has the script yet: each SCRIPT LOAD below is on purpose.
	sha := fmt.Sprintf("%x", sha1.Sum([]byte(incr)))
	hot := "product:{iphone15}:stock"

	t.Run("Refresh maps every slot to its master", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		// CLUSTER SLOTS leaves out a replica until the others have heard
		// (by gossip) that its replication offset is above 0: on a fresh
		// cluster, before any write, redisc knows the masters only.
		for slot := range redistest.Slots {
			if l := p.layout[slot]; len(l) == 0 {
				t.Fatalf("layout[%d] empty", slot)
			}
		}
		t.Logf("layout[0] after the first Refresh: %v", p.layout[0])
		for _, key := range []string{hot, "product:{a}:stock", "x"} {
			if redisc.Slot(key) != redistest.Slot(key) {
				t.Errorf("redisc.Slot(%q) = %d, redistest.Slot = %d", key, redisc.Slot(key), redistest.Slot(key))
			}
			m, err := c.MasterOf(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.addrOf(redisc.Slot(key)); got != m.Addr {
				t.Errorf("layout says %s serves %q, the cluster says %s", got, key, m)
			}
		}
	})

	t.Run("pipelined EVALSHA on a bound connection", func(t *testing.T) {
		conn := p.bound(t, hot)
		// Bound: every command goes to hot's master, keyed or not.
		conn.Send("SCRIPT", "LOAD", incr)
		for range 5 {
			conn.Send("EVALSHA", sha, 1, hot, 1)
		}
		if err := conn.Flush(); err != nil {
			t.Fatal(err)
		}
		if got, err := redis.String(conn.Receive()); err != nil || got != sha {
			t.Fatalf("SCRIPT LOAD = %q, %v", got, err)
		}
		for i := 1; i <= 5; i++ {
			if got, err := redis.Int(conn.Receive()); err != nil || got != i {
				t.Errorf("EVALSHA %d = %d, %v", i, got, err)
			}
		}
	})

	t.Run("one bound connection serves every slot of its node; a call for another node fails alone", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		hotNode, _ := c.MasterOf(ctx, hot)
		var same string
		for i := range 100 {
			k := fmt.Sprintf("product:{p%d}:stock", i)
			if n, _ := c.MasterOf(ctx, k); n == hotNode && redisc.Slot(k) != redisc.Slot(hot) {
				same = k
				break
			}
		}
		elsewhere := keyNotOn(ctx, t, c, hotNode)
		conn := p.bound(t, hot)
		conn.Send("EVALSHA", sha, 1, same, 1)
		conn.Send("EVALSHA", sha, 1, elsewhere, 1)
		conn.Send("EVALSHA", sha, 1, hot, 1)
		conn.Send("WAIT", 1, 2000) // the durability wait works on a cluster master
		conn.Flush()
		if got, err := redis.Int(conn.Receive()); err != nil || got != 1 {
			t.Errorf("EVALSHA of another slot of the same node = %d, %v; want 1", got, err)
		}
		_, err := conn.Receive()
		if re := redisc.ParseRedir(err); re == nil || re.Type != "MOVED" || re.NewSlot != redisc.Slot(elsewhere) {
			t.Errorf("EVALSHA of a key on another node: %v, want MOVED %d", err, redisc.Slot(elsewhere))
		}
		if got, err := redis.Int(conn.Receive()); err != nil || got != 6 {
			t.Errorf("EVALSHA after the MOVED in the same pipeline = %d, %v; want 6", got, err)
		}
		if got, err := redis.Int(conn.Receive()); err != nil || got != 1 {
			t.Errorf("WAIT 1 = %d, %v; want 1 replica", got, err)
		}
	})

	t.Run("an unbound connection routes EVALSHA by the sha, not the key", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		shaNode, err := c.NodeFor(ctx, redisc.Slot(sha))
		if err != nil {
			t.Fatal(err)
		}
		key := keyNotOn(ctx, t, c, shaNode)
		keyNode, _ := c.MasterOf(ctx, key)
		conn := p.Get()
		defer conn.Close()
		_, err = conn.Do("EVALSHA", sha, 1, key, 1)
		if re := redisc.ParseRedir(err); re == nil || re.Type != "MOVED" || re.Addr != keyNode.Addr {
			t.Errorf("unbound EVALSHA: %v, want MOVED to %s", err, keyNode)
		}
	})

	t.Run("NOSCRIPT per node", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		hotNode, _ := c.MasterOf(ctx, hot)
		other := keyNotOn(ctx, t, c, hotNode)
		_, err := p.bound(t, other).Do("EVALSHA", sha, 1, other, 1)
		if !isErr(err, "NOSCRIPT") {
			t.Errorf("EVALSHA on a master that never loaded the script: %v, want NOSCRIPT", err)
		}
		// SCRIPT LOAD on a master: does its replica know the script (it
		// matters after a failover)?
		rs, err := c.ReplicasOf(ctx, hotNode)
		if err != nil || len(rs) != 1 {
			t.Fatalf("replicas of %s: %v, %v", hotNode, rs, err)
		}
		exists, err := redis.Ints(c.Do(ctx, rs[0], "SCRIPT", "EXISTS", sha))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("SCRIPT EXISTS on the replica of a master that loaded it: %v", exists)
		if exists[0] != 0 {
			t.Errorf("the replica knows the script: SCRIPT LOAD is replicated after all")
		}
	})

	t.Run("MOVED after a reshard", func(t *testing.T) {
		ctx := step(t, 20*time.Second)
		from, _ := c.MasterOf(ctx, hot)
		to := otherMaster(ctx, t, c, from)
		old := p.bound(t, hot)
		if myID(t, old) != from.ID {
			t.Fatal("bound connection not on the slot's master")
		}
		before, err := redis.Int(old.Do("GET", hot))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Reshard(ctx, redisc.Slot(hot), from, to); err != nil {
			t.Fatal(err)
		}
		_, err = old.Do("EVALSHA", sha, 1, hot, 1)
		re := redisc.ParseRedir(err)
		if re == nil || re.Type != "MOVED" || re.NewSlot != redisc.Slot(hot) || re.Addr != to.Addr {
			t.Fatalf("EVALSHA on the old master: %v (%+v), want MOVED %d %s", err, re, redisc.Slot(hot), to)
		}
		// That MOVED already pointed redisc's map at the new master; the
		// full refresh it started runs in the background.
		conn := p.bound(t, hot)
		if myID(t, conn) != to.ID {
			t.Errorf("a new bound connection is not on the new master %s", to)
		}
		if _, err := conn.Do("EVALSHA", sha, 1, hot, 1); !isErr(err, "NOSCRIPT") {
			t.Errorf("EVALSHA on the new master: %v, want NOSCRIPT (it never loaded the script)", err)
		}
		conn.Send("SCRIPT", "LOAD", incr)
		conn.Send("EVALSHA", sha, 1, hot, 1)
		conn.Flush()
		conn.Receive()
		if got, err := redis.Int(conn.Receive()); err != nil || got != before+1 {
			t.Errorf("EVALSHA after the reshard = %d, %v; want %d (the key moved)", got, err, before+1)
		}
	})

	t.Run("ASK and TRYAGAIN during a migration", func(t *testing.T) {
		ctx := step(t, 20*time.Second)
		moved, stays := "product:{ask}:stock", "product:{ask}:held"
		from, _ := c.MasterOf(ctx, moved)
		to := otherMaster(ctx, t, c, from)
		src := p.bound(t, moved)
		src.Send("SCRIPT", "LOAD", incr)
		src.Send("SET", moved, 10)
		src.Send("SET", stays, 10)
		if _, err := src.Do(""); err != nil {
			t.Fatal(err)
		}
		m, err := c.BeginReshard(ctx, redisc.Slot(moved), from, to)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Move(ctx, moved); err != nil {
			t.Fatal(err)
		}

		_, err = src.Do("EVALSHA", sha, 1, moved, 1)
		re := redisc.ParseRedir(err)
		if re == nil || re.Type != "ASK" || re.Addr != to.Addr {
			t.Fatalf("EVALSHA of a moved key at the source: %v, want ASK to %s", err, to)
		}
		if got, err := redis.Int(src.Do("EVALSHA", sha, 1, stays, 1)); err != nil || got != 11 {
			t.Errorf("EVALSHA of a key not moved yet = %d, %v; want 11 at the source", got, err)
		}
		if _, err := src.Do("EVAL", "return 1", 2, moved, stays); !redisc.IsTryAgain(err) {
			t.Errorf("a script on a moved and a staying key: %v, want TRYAGAIN", err)
		}

		// Following ASK in a pipeline: redisc has no public way to get a
		// connection to an address, so a transport keeps its own (here
		// the pool CreatePool made, or a new one).
		tconn := p.connTo(t, re.Addr)
		tconn.Send("SCRIPT", "LOAD", incr)
		tconn.Send("EVALSHA", sha, 1, moved, 1) // no ASKING: MOVED back to the source
		tconn.Send("ASKING")
		tconn.Send("EVALSHA", sha, 1, moved, 1)
		tconn.Send("ASKING")
		tconn.Send("EVALSHA", sha, 1, moved, 1)
		tconn.Flush()
		tconn.Receive()
		if _, err := tconn.Receive(); redisc.ParseRedir(err) == nil || redisc.ParseRedir(err).Type != "MOVED" {
			t.Errorf("EVALSHA at the target without ASKING: %v, want MOVED", err)
		}
		for _, want := range []int{11, 12} {
			tconn.Receive() // OK of ASKING
			if got, err := redis.Int(tconn.Receive()); err != nil || got != want {
				t.Errorf("ASKING + EVALSHA at the target = %d, %v; want %d", got, err, want)
			}
		}

		// RetryConn follows ASK (ASKING, then the command) for Do, once
		// bound; it refuses Send, so it cannot pipeline.
		conn := p.Get()
		defer conn.Close()
		if err := redisc.BindConn(conn, moved); err != nil {
			t.Fatal(err)
		}
		rc, err := redisc.RetryConn(conn, 3, 50*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := redis.Int(rc.Do("EVALSHA", sha, 1, moved, 1)); err != nil || got != 13 {
			t.Errorf("RetryConn EVALSHA through ASK = %d, %v; want 13", got, err)
		}
		if err := rc.Send("EVALSHA", sha, 1, moved, 1); err == nil {
			t.Error("RetryConn accepted Send")
		}
		if err := m.Finish(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("failover: MOVED from the demoted master, NOSCRIPT on the promoted one", func(t *testing.T) {
		ctx := step(t, 20*time.Second)
		m, _ := c.MasterOf(ctx, hot)
		rs, err := c.ReplicasOf(ctx, m)
		if err != nil || len(rs) != 1 {
			t.Fatalf("replicas of %s: %v, %v", m, rs, err)
		}
		old := p.bound(t, hot)
		if err := c.Failover(ctx, rs[0]); err != nil {
			t.Fatal(err)
		}
		_, err = old.Do("EVALSHA", sha, 1, hot, 1)
		if re := redisc.ParseRedir(err); re == nil || re.Type != "MOVED" || re.Addr != rs[0].Addr {
			t.Fatalf("EVALSHA on the demoted master: %v, want MOVED to %s", err, rs[0])
		}
		conn := p.bound(t, hot)
		if myID(t, conn) != rs[0].ID {
			t.Errorf("a new bound connection is not on the promoted replica %s", rs[0])
		}
		if _, err := conn.Do("EVALSHA", sha, 1, hot, 1); !isErr(err, "NOSCRIPT") {
			t.Errorf("EVALSHA on the promoted replica: %v, want NOSCRIPT", err)
		}
	})

	t.Run("killed master: a network error or MOVED, then Refresh", func(t *testing.T) {
		ctx := step(t, 30*time.Second)
		killed := time.Now()
		_, promoted, err := c.KillMasterOf(ctx, hot)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("NodeTimeout 1s: cluster healthy again %v after SIGKILL", time.Since(killed).Round(time.Millisecond))
		// No MOVED comes from a dead node, and redisc's map still names
		// it. If the pool holds an idle connection to it, Bind takes that
		// and the first command fails with a network error; if it must
		// dial, the dial fails and Bind silently falls back to a random
		// node, which answers MOVED to the promoted replica.
		conn := p.Get()
		defer conn.Close()
		err = redisc.BindConn(conn, hot)
		if err == nil {
			_, err = conn.Do("EVALSHA", sha, 1, hot, 1)
		}
		var rerr redis.Error
		if re := redisc.ParseRedir(err); re != nil {
			if re.Addr != promoted.Addr {
				t.Errorf("EVALSHA on the killed master's slot before a Refresh: %v, want MOVED to %s", err, promoted)
			}
		} else if err == nil || errors.As(err, &rerr) {
			t.Errorf("EVALSHA on the killed master's slot before a Refresh: %v, want a network error or MOVED", err)
		}
		t.Logf("before Refresh: %v", err)
		if err := p.Refresh(); err != nil {
			t.Fatal(err)
		}
		conn2 := p.bound(t, hot)
		if myID(t, conn2) != promoted.ID {
			t.Errorf("after Refresh the slot is not on the promoted replica %s", promoted)
		}
		_, err = conn2.Do("EVALSHA", sha, 1, hot, 1)
		// This replica had loaded the script while it was a master (in
		// the reshard step): its script cache survived the demotion.
		t.Logf("EVALSHA on the replica promoted by the kill: %v", err)
	})

	t.Run("PUBLISH reaches every node; SPUBLISH the channel's shard only", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		const ch = "flashsale:probe"
		var subs []redis.Conn
		for _, addr := range c.Addrs() {
			subs = append(subs, subscribe(t, addr, "SUBSCRIBE", ch))
		}
		if _, err := c.Do(ctx, c.Nodes()[0], "PUBLISH", ch, "hello"); err != nil {
			t.Fatal(err)
		}
		for i, sub := range subs {
			if kind, msg := receive(t, sub); kind != "message" || msg != "hello" {
				t.Errorf("subscriber on %s got %s %q, want message hello", c.Addrs()[i], kind, msg)
			}
		}

		owner, err := c.NodeFor(ctx, redisc.Slot(ch))
		if err != nil {
			t.Fatal(err)
		}
		other, _ := c.MasterOf(ctx, keyNotOn(ctx, t, c, owner))
		conn := redistest.Conn(t, other.Addr)
		if _, err := conn.Do("SSUBSCRIBE", ch); redisc.ParseRedir(err) == nil {
			t.Errorf("SSUBSCRIBE on a node that does not hold the channel's slot: %v, want MOVED", err)
		}
		rs, _ := c.ReplicasOf(ctx, owner)
		shard := []redis.Conn{subscribe(t, owner.Addr, "SSUBSCRIBE", ch)}
		for _, r := range rs {
			shard = append(shard, subscribe(t, r.Addr, "SSUBSCRIBE", ch))
		}
		if _, err := c.Do(ctx, owner, "SPUBLISH", ch, "sharded"); err != nil {
			t.Fatal(err)
		}
		for i, sub := range shard {
			if kind, msg := receive(t, sub); kind != "smessage" || msg != "sharded" {
				t.Errorf("shard subscriber %d got %s %q, want smessage sharded", i, kind, msg)
			}
		}
	})

	t.Run("EachNode visits the masters", func(t *testing.T) {
		ctx := step(t, 10*time.Second)
		if err := p.Refresh(); err != nil {
			t.Fatal(err)
		}
		var seen []string
		err := p.EachNode(false, func(addr string, conn redis.Conn) error {
			if _, err := conn.Do("DBSIZE"); err != nil {
				return err
			}
			seen = append(seen, addr)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		masters, _ := c.Masters(ctx)
		if len(seen) != len(masters) {
			t.Errorf("EachNode visited %v, the masters are %v", seen, masters)
		}
		t.Logf("pool stats by node: %v", p.Stats())
	})
}

// connTo returns a connection to addr from the pool redisc made for it,
// or a new one.
func (p *probe) connTo(t *testing.T, addr string) redis.Conn {
	t.Helper()
	p.mu.Lock()
	pool := p.pools[addr]
	p.mu.Unlock()
	var conn redis.Conn
	var err error
	if pool != nil {
		conn = pool.Get()
		err = conn.Err()
	} else {
		conn, err = redis.Dial("tcp", addr, p.DialOptions...)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func otherMaster(ctx context.Context, t *testing.T, c *redistest.Cluster, not *redistest.Node) *redistest.Node {
	t.Helper()
	masters, err := c.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range masters {
		if m != not {
			return m
		}
	}
	t.Fatal("no other master")
	return nil
}

// keyNotOn returns a product key whose master is none of nodes.
func keyNotOn(ctx context.Context, t *testing.T, c *redistest.Cluster, nodes ...*redistest.Node) string {
	t.Helper()
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g", "h"} {
		key := "product:{" + id + "}:stock"
		n, err := c.MasterOf(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(nodes, n) {
			return key
		}
	}
	t.Fatal("no key off those nodes")
	return ""
}

// subscribe opens a connection to addr that runs cmd (SUBSCRIBE or
// SSUBSCRIBE) on ch and has read the confirmation.
func subscribe(t *testing.T, addr, cmd, ch string) redis.Conn {
	t.Helper()
	conn := redistest.Conn(t, addr)
	if err := conn.Send(cmd, ch); err != nil {
		t.Fatal(err)
	}
	conn.Flush()
	if _, err := redis.ReceiveWithTimeout(conn, 2*time.Second); err != nil {
		t.Fatalf("%s %s on %s: %v", cmd, ch, addr, err)
	}
	return conn
}

// receive reads one pushed message: its kind (message, smessage) and
// payload.
func receive(t *testing.T, conn redis.Conn) (kind, payload string) {
	t.Helper()
	v, err := redis.Strings(redis.ReceiveWithTimeout(conn, 2*time.Second))
	if err != nil || len(v) != 3 {
		t.Fatalf("receive: %v, %v", v, err)
	}
	return v[0], v[2]
}
