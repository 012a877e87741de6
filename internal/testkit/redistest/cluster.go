package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// busOffset is what Redis adds to a node's port for its cluster bus port.
const busOffset = 10000

// Errors of the cluster helper.
var (
	// ErrNotConverged: the nodes did not agree on a healthy cluster in time.
	ErrNotConverged = errors.New("redistest: cluster did not converge")
	// ErrNodeDown: the operation needs a node that was killed.
	ErrNodeDown = errors.New("redistest: cluster node is down")
)

// ClusterConfig says what cluster StartCluster builds. Its zero value is
// three masters without replicas.
type ClusterConfig struct {
	// Masters is the number of masters (3 when 0). The slots are split
	// evenly among them, in order.
	Masters int
	// Replicas is the number of replicas of each master (0: none).
	Replicas int
	// NodeTimeout is cluster-node-timeout: how long a node may not answer
	// before the others mark it failing and its replica takes over
	// (2s when 0). Short values make automatic failover fast but may fail
	// over a node that a loaded machine merely paused.
	NodeTimeout time.Duration
	// Startup bounds StartCluster (30s when 0).
	Startup time.Duration
	// Extra are more redis-server arguments for every node.
	Extra []string
}

// Node is one redis-server of a Cluster. Its address and id stay the same
// across Kill and Restart; its role may change (see Cluster.Masters).
type Node struct {
	Addr string
	ID   string
	srv  *Server
	down bool
}

// String returns the node's address.
func (n *Node) String() string { return n.Addr }

// Cluster is a local Redis Cluster owned by a test.
type Cluster struct {
	cfg ClusterConfig

	mu    sync.Mutex
	nodes []*Node
}

// StartCluster starts a Redis Cluster of cfg.Masters masters and
// cfg.Replicas replicas each, every node a redis-server on a free loopback
// port below 55535 (its bus port, 10000 above, free too; both below the
// ephemeral port range where it allows) in a directory of its own, and waits until every node reports cluster_state:ok, agrees on
// who holds every slot, and every replica's link to its master is up. The
// nodes are stopped and their directories removed when the test ends.
//
// The cluster is built by hand (CLUSTER ADDSLOTSRANGE, SET-CONFIG-EPOCH,
// MEET, REPLICATE) rather than with redis-cli --cluster create, which
// sleeps between steps. The floor is Redis's own: a master reports
// cluster_state:ok no sooner than 2s after it started.
//
// Without redis-server the test is skipped, or fails when
// FLASHSALE_TEST_REDIS=real (see ServerBin).
func StartCluster(tb testing.TB, cfg ClusterConfig) *Cluster {
	tb.Helper()
	bin := ServerBin(tb)
	cfg = cfg.withDefaults()
	c := &Cluster{cfg: cfg}
	tb.Cleanup(c.stop)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Startup)
	defer cancel()
	if err := c.start(ctx, bin); err != nil {
		tb.Fatalf("redistest: start cluster: %v%s", err, c.logs())
	}
	return c
}

func (cfg ClusterConfig) withDefaults() ClusterConfig {
	if cfg.Masters <= 0 {
		cfg.Masters = 3
	}
	if cfg.NodeTimeout <= 0 {
		cfg.NodeTimeout = 2 * time.Second
	}
	if cfg.Startup <= 0 {
		cfg.Startup = 30 * time.Second
	}
	return cfg
}

func (c *Cluster) start(ctx context.Context, bin string) error {
	n := c.cfg.Masters * (1 + c.cfg.Replicas)
	args := append([]string{
		"--cluster-enabled", "yes",
		// Relative to --dir, the node's own directory: redis-server
		// changes into it before it reads or writes nodes.conf.
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(c.cfg.NodeTimeout.Milliseconds(), 10),
		// Keep the topology the test built: no replica moves to another
		// master on its own.
		"--cluster-allow-replica-migration", "no",
		// A replica's first sync starts at once (the default waits 5s
		// for more replicas to share the transfer).
		"--repl-diskless-sync-delay", "0",
	}, c.cfg.Extra...)
	for range n {
		s, err := startServer(bin, freeClusterPort, "", args...)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, &Node{Addr: s.Addr, srv: s})
	}
	for i, node := range c.nodes {
		id, err := redis.String(c.Do(ctx, node, "CLUSTER", "MYID"))
		if err != nil {
			return err
		}
		node.ID = id
		// Distinct epochs before the nodes meet, as redis-cli does, so no
		// two masters claim their slots with the same epoch.
		if _, err := c.Do(ctx, node, "CLUSTER", "SET-CONFIG-EPOCH", i+1); err != nil {
			return err
		}
	}
	for i, m := range c.nodes[:c.cfg.Masters] {
		first, last := i*Slots/c.cfg.Masters, (i+1)*Slots/c.cfg.Masters-1
		if _, err := c.Do(ctx, m, "CLUSTER", "ADDSLOTSRANGE", first, last); err != nil {
			return err
		}
	}
	// Every node meets every other: faster than waiting for gossip to
	// spread one MEET.
	for _, a := range c.nodes {
		for _, b := range c.nodes {
			if a == b {
				continue
			}
			host, port, _ := net.SplitHostPort(b.Addr)
			if _, err := c.Do(ctx, a, "CLUSTER", "MEET", host, port); err != nil {
				return err
			}
		}
	}
	if err := c.waitFor(ctx, "every node knows every other", c.allKnown); err != nil {
		return err
	}
	for i, r := range c.nodes[c.cfg.Masters:] {
		m := c.nodes[i/c.cfg.Replicas]
		if _, err := c.Do(ctx, r, "CLUSTER", "REPLICATE", m.ID); err != nil {
			return fmt.Errorf("%s replicate %s: %w", r.Addr, m.Addr, err)
		}
	}
	return c.WaitHealthy(ctx)
}

// freeClusterPort picks a port that is free on loopback together with its
// bus port, both below the kernel's ephemeral range when there is room
// (so an outgoing connection cannot take one between the check and
// redis-server's bind, nor while a killed node is down), and in any case
// below 65535-busOffset.
func freeClusterPort() (int, error) {
	lo, hi := clusterPortRange()
	for range 100 {
		port := lo + rand.IntN(hi-lo)
		a, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		b, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port+busOffset)))
		a.Close()
		if err != nil {
			continue
		}
		b.Close()
		return port, nil
	}
	return 0, errors.New("redistest: no free pair of loopback ports for a cluster node")
}

// clusterPortRange returns where freeClusterPort picks: [lo, hi).
func clusterPortRange() (lo, hi int) {
	const first = 11000
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if eph, err := strconv.Atoi(f[0]); err == nil && eph-busOffset >= first+1000 {
				return first, eph - busOffset
			}
		}
	}
	return first, 65535 - busOffset
}

func (c *Cluster) stop() {
	for _, n := range c.nodes {
		n.srv.Stop()
	}
}

// logs returns the tail of every node's log, for a failure message.
func (c *Cluster) logs() string {
	servers := make([]*Server, len(c.nodes))
	for i, n := range c.nodes {
		servers[i] = n.srv
	}
	return logTails(servers)
}

// logTails returns the tail of each server's log, for a failure message.
func logTails(servers []*Server) string {
	var b strings.Builder
	for _, s := range servers {
		log, _ := os.ReadFile(filepath.Join(s.Dir(), "redis.log"))
		lines := strings.Split(strings.TrimSpace(string(log)), "\n")
		if len(lines) > 10 {
			lines = lines[len(lines)-10:]
		}
		fmt.Fprintf(&b, "\n--- %s log:\n%s", s.Addr, strings.Join(lines, "\n"))
	}
	return b.String()
}

// Do runs one command on node, on a connection of its own, and returns the
// reply: a test's probe of one particular node (a node answers MOVED or
// ASK for a key it does not serve). ctx's deadline, at most 5s, bounds it.
func (c *Cluster) Do(ctx context.Context, n *Node, cmd string, args ...any) (any, error) {
	return do(ctx, n.Addr, cmd, args...)
}

// do runs one command at addr on a connection of its own, bounded by
// ctx's deadline and at most 5s.
func do(ctx context.Context, addr, cmd string, args ...any) (any, error) {
	timeout := 5 * time.Second
	if d, ok := ctx.Deadline(); ok && time.Until(d) < timeout {
		timeout = max(time.Until(d), time.Millisecond)
	}
	conn, err := redis.Dial("tcp", addr,
		redis.DialConnectTimeout(timeout), redis.DialReadTimeout(timeout), redis.DialWriteTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	defer conn.Close()
	v, err := conn.Do(cmd, args...)
	if err != nil {
		return nil, fmt.Errorf("%s %s %v: %w", addr, cmd, args, err)
	}
	return v, nil
}

// Addrs returns the addresses of every node that was not killed, masters
// first (as started; see Masters for the roles now).
func (c *Cluster) Addrs() []string {
	var addrs []string
	for _, n := range c.live() {
		addrs = append(addrs, n.Addr)
	}
	return addrs
}

// Nodes returns every node, killed ones too, in the order they started:
// the masters, then the replicas of the first master, of the second, ….
func (c *Cluster) Nodes() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.nodes)
}

func (c *Cluster) live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var live []*Node
	for _, n := range c.nodes {
		if !n.down {
			live = append(live, n)
		}
	}
	return live
}

func (c *Cluster) byID(id string) *Node {
	for _, n := range c.nodes {
		if n.ID == id {
			return n
		}
	}
	return nil
}

// Masters returns the nodes that are masters now and not failed, as the
// first live node sees them, in start order.
func (c *Cluster) Masters(ctx context.Context) ([]*Node, error) {
	v, err := c.anyView(ctx)
	if err != nil {
		return nil, err
	}
	var ms []*Node
	for _, n := range c.Nodes() {
		if e, ok := v[n.ID]; ok && e.master && !e.failed && !n.down {
			ms = append(ms, n)
		}
	}
	return ms, nil
}

// MasterOfNode returns the master that replica follows now.
func (c *Cluster) MasterOfNode(ctx context.Context, replica *Node) (*Node, error) {
	v, err := c.anyView(ctx)
	if err != nil {
		return nil, err
	}
	e, ok := v[replica.ID]
	if !ok || e.master {
		return nil, fmt.Errorf("redistest: %s is not a replica", replica.Addr)
	}
	return c.byID(e.masterID), nil
}

// ReplicasOf returns the live replicas that follow master now.
func (c *Cluster) ReplicasOf(ctx context.Context, master *Node) ([]*Node, error) {
	v, err := c.anyView(ctx)
	if err != nil {
		return nil, err
	}
	var rs []*Node
	for _, n := range c.Nodes() {
		if e, ok := v[n.ID]; ok && !e.master && e.masterID == master.ID && !n.down {
			rs = append(rs, n)
		}
	}
	return rs, nil
}

// NodeFor returns the master that holds slot now, as the first live node
// sees it.
func (c *Cluster) NodeFor(ctx context.Context, slot int) (*Node, error) {
	v, err := c.anyView(ctx)
	if err != nil {
		return nil, err
	}
	for id, e := range v {
		if e.holds(slot) {
			return c.byID(id), nil
		}
	}
	return nil, fmt.Errorf("redistest: no node holds slot %d", slot)
}

// MasterOf returns the master that holds key's slot now.
func (c *Cluster) MasterOf(ctx context.Context, key string) (*Node, error) {
	return c.NodeFor(ctx, Slot(key))
}

// Kill crashes node with SIGKILL. When it was a master with a replica, the
// replica takes over once the others have marked it failed
// (ClusterConfig.NodeTimeout, then an election); WaitHealthy waits for that.
func (c *Cluster) Kill(n *Node) error {
	if err := n.srv.Kill(); err != nil {
		return err
	}
	c.mu.Lock()
	n.down = true
	c.mu.Unlock()
	return nil
}

// Signal sends sig to node's process: syscall.SIGSTOP freezes it (its
// peers mark it failing after NodeTimeout), syscall.SIGCONT thaws it.
func (c *Cluster) Signal(n *Node, sig os.Signal) error { return n.srv.Signal(sig) }

// KillMasterOf crashes the master of key's slot and waits until one of
// its replicas has taken the slot over and the cluster is healthy. It
// returns the killed master and the promoted replica.
func (c *Cluster) KillMasterOf(ctx context.Context, key string) (killed, promoted *Node, err error) {
	killed, err = c.MasterOf(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	rs, err := c.ReplicasOf(ctx, killed)
	if err != nil {
		return nil, nil, err
	}
	if len(rs) == 0 {
		return nil, nil, fmt.Errorf("redistest: master %s has no replica to take over", killed)
	}
	if err := c.Kill(killed); err != nil {
		return nil, nil, err
	}
	if err := c.WaitHealthy(ctx); err != nil {
		return killed, nil, err
	}
	promoted, err = c.MasterOf(ctx, key)
	if err != nil {
		return killed, nil, err
	}
	if !slices.Contains(rs, promoted) {
		return killed, promoted, fmt.Errorf("redistest: slot of %q went to %s, not to a replica of %s", key, promoted, killed)
	}
	return killed, promoted, nil
}

// Restart starts a killed node again with its nodes.conf: it rejoins the
// cluster (a master that lost its slots while down comes back as a
// replica). It then waits until the cluster is healthy.
func (c *Cluster) Restart(ctx context.Context, n *Node) error {
	if err := n.srv.Restart(); err != nil {
		return err
	}
	c.mu.Lock()
	n.down = false
	c.mu.Unlock()
	return c.WaitHealthy(ctx)
}

// Failover promotes replica to master with CLUSTER FAILOVER, the manual
// failover without data loss (the master stops writes until the replica
// has caught up), and waits until every node agrees and the cluster is
// healthy. When the replica's master was killed it uses CLUSTER FAILOVER
// FORCE, which does not need the master.
func (c *Cluster) Failover(ctx context.Context, replica *Node) error {
	m, err := c.MasterOfNode(ctx, replica)
	if err != nil {
		return err
	}
	args := []any{"FAILOVER"}
	if m == nil || m.down {
		args = append(args, "FORCE")
	}
	if _, err := c.Do(ctx, replica, "CLUSTER", args...); err != nil {
		return err
	}
	return c.waitFor(ctx, replica.Addr+" is master everywhere and the cluster is healthy", func(ctx context.Context) error {
		err := c.agree(ctx, func(v view) error {
			if e := v[replica.ID]; e == nil || !e.master {
				return fmt.Errorf("%s not yet master", replica.Addr)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return c.healthy(ctx)
	})
}

// Migration is a slot on its way from one master to another: the source
// is MIGRATING, the target IMPORTING. A key still in the source is served
// there; a key already moved answers ASK at the source and needs ASKING at
// the target; a key that exists in neither is ASKed to the target too.
type Migration struct {
	c        *Cluster
	Slot     int
	From, To *Node
}

// BeginReshard starts moving slot from one master to another and moves no
// key: call Move for some keys to test ASK, then Finish.
func (c *Cluster) BeginReshard(ctx context.Context, slot int, from, to *Node) (*Migration, error) {
	if from.down || to.down {
		return nil, ErrNodeDown
	}
	// Target first, as redis-cli does: a client ASKed to the target must
	// find it importing.
	if _, err := c.Do(ctx, to, "CLUSTER", "SETSLOT", slot, "IMPORTING", from.ID); err != nil {
		return nil, err
	}
	if _, err := c.Do(ctx, from, "CLUSTER", "SETSLOT", slot, "MIGRATING", to.ID); err != nil {
		return nil, err
	}
	return &Migration{c: c, Slot: slot, From: from, To: to}, nil
}

// Move migrates keys (all in the migration's slot) to the target.
func (m *Migration) Move(ctx context.Context, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	host, port, _ := net.SplitHostPort(m.To.Addr)
	args := []any{host, port, "", 0, 5000, "KEYS"}
	for _, k := range keys {
		if s := Slot(k); s != m.Slot {
			return fmt.Errorf("redistest: key %q is in slot %d, not %d", k, s, m.Slot)
		}
		args = append(args, k)
	}
	_, err := m.c.Do(ctx, m.From, "MIGRATE", args...)
	return err
}

// Finish moves the keys left in the source, gives the slot to the target
// on every master, and waits until every node agrees and the cluster is
// healthy.
func (m *Migration) Finish(ctx context.Context) error {
	for {
		keys, err := redis.Strings(m.c.Do(ctx, m.From, "CLUSTER", "GETKEYSINSLOT", m.Slot, 100))
		if err != nil {
			return err
		}
		if len(keys) == 0 {
			break
		}
		if err := m.Move(ctx, keys...); err != nil {
			return err
		}
	}
	// Target, then source, then the other masters, as Redis documents.
	order := []*Node{m.To, m.From}
	masters, err := m.c.Masters(ctx)
	if err != nil {
		return err
	}
	for _, n := range masters {
		if n != m.To && n != m.From {
			order = append(order, n)
		}
	}
	for _, n := range order {
		if _, err := m.c.Do(ctx, n, "CLUSTER", "SETSLOT", m.Slot, "NODE", m.To.ID); err != nil {
			return err
		}
	}
	return m.c.waitFor(ctx, fmt.Sprintf("slot %d on %s everywhere", m.Slot, m.To.Addr), func(ctx context.Context) error {
		err := m.c.agree(ctx, func(v view) error {
			if e := v[m.To.ID]; e == nil || !e.holds(m.Slot) {
				return fmt.Errorf("slot %d not yet on %s", m.Slot, m.To.Addr)
			}
			return nil
		})
		if err != nil {
			return err
		}
		return m.c.healthy(ctx)
	})
}

// Reshard moves slot, and every key in it, from one master to another:
// CLUSTER SETSLOT IMPORTING and MIGRATING, MIGRATE, SETSLOT NODE.
func (c *Cluster) Reshard(ctx context.Context, slot int, from, to *Node) error {
	m, err := c.BeginReshard(ctx, slot, from, to)
	if err != nil {
		return err
	}
	return m.Finish(ctx)
}

// WaitHealthy waits until every live node reports cluster_state:ok with
// all slots assigned and served, every live node has the same view of
// which node is master of which slots and which replica follows which
// master, and every live replica's link to its master is up.
func (c *Cluster) WaitHealthy(ctx context.Context) error {
	return c.waitFor(ctx, "cluster healthy", c.healthy)
}

func (c *Cluster) waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	return waitFor(ctx, what, check)
}

// waitFor runs check every 20ms until it succeeds or ctx ends.
func waitFor(ctx context.Context, what string, check func(context.Context) error) error {
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %v (%v)", ErrNotConverged, what, err, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (c *Cluster) healthy(ctx context.Context) error {
	for _, n := range c.live() {
		info, err := redis.String(c.Do(ctx, n, "CLUSTER", "INFO"))
		if err != nil {
			return err
		}
		f := fields(info)
		if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != strconv.Itoa(Slots) {
			return fmt.Errorf("%s: cluster_state:%s cluster_slots_ok:%s", n.Addr, f["cluster_state"], f["cluster_slots_ok"])
		}
	}
	var replicas []*Node
	err := c.agree(ctx, func(v view) error {
		replicas = replicas[:0]
		for _, n := range c.live() {
			e, ok := v[n.ID]
			if !ok {
				return fmt.Errorf("%s unknown", n.Addr)
			}
			if !e.master {
				replicas = append(replicas, n)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, r := range replicas {
		info, err := redis.String(c.Do(ctx, r, "INFO", "replication"))
		if err != nil {
			return err
		}
		if s := fields(info)["master_link_status"]; s != "up" {
			return fmt.Errorf("%s: master_link_status:%s", r.Addr, s)
		}
	}
	return nil
}

// allKnown checks that every node knows every other by id, past the
// handshake.
func (c *Cluster) allKnown(ctx context.Context) error {
	for _, n := range c.live() {
		v, err := c.view(ctx, n)
		if err != nil {
			return err
		}
		for _, o := range c.live() {
			if e, ok := v[o.ID]; !ok || e.handshake {
				return fmt.Errorf("%s does not know %s yet", n.Addr, o.Addr)
			}
		}
	}
	return nil
}

// agree checks that every live node has the same view of the cluster and
// that check accepts it.
func (c *Cluster) agree(ctx context.Context, check func(view) error) error {
	var first view
	var firstAddr string
	for _, n := range c.live() {
		v, err := c.view(ctx, n)
		if err != nil {
			return err
		}
		if first == nil {
			first, firstAddr = v, n.Addr
			if err := check(v); err != nil {
				return err
			}
			continue
		}
		if !v.same(first) {
			return fmt.Errorf("%s and %s see the cluster differently", firstAddr, n.Addr)
		}
	}
	if first == nil {
		return errors.New("redistest: every node is down")
	}
	return nil
}

// view is what one node's CLUSTER NODES says, by node id.
type view map[string]*nodeEntry

type nodeEntry struct {
	addr      string
	master    bool
	masterID  string // of a replica
	failed    bool   // flagged fail (not the local pfail suspicion)
	handshake bool
	slots     [][2]int // ranges, first and last; migrating markers left out
}

func (e *nodeEntry) holds(slot int) bool {
	for _, r := range e.slots {
		if slot >= r[0] && slot <= r[1] {
			return true
		}
	}
	return false
}

// same compares the roles, masters and slots of two views; it ignores
// link states, pfail suspicions and migration markers, which are local.
func (v view) same(o view) bool {
	if len(v) != len(o) {
		return false
	}
	for id, e := range v {
		f, ok := o[id]
		if !ok || e.master != f.master || e.masterID != f.masterID || !slices.Equal(e.slots, f.slots) {
			return false
		}
	}
	return true
}

func (c *Cluster) anyView(ctx context.Context) (view, error) {
	var last error = ErrNodeDown
	for _, n := range c.live() {
		v, err := c.view(ctx, n)
		if err == nil {
			return v, nil
		}
		last = err
	}
	return nil, last
}

func (c *Cluster) view(ctx context.Context, n *Node) (view, error) {
	s, err := redis.String(c.Do(ctx, n, "CLUSTER", "NODES"))
	if err != nil {
		return nil, err
	}
	return parseNodes(s)
}

// parseNodes reads CLUSTER NODES: id addr flags master ping pong epoch
// link slot….
func parseNodes(s string) (view, error) {
	v := view{}
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("redistest: CLUSTER NODES line %q", line)
		}
		addr, _, _ := strings.Cut(f[1], "@")
		flags := strings.Split(f[2], ",")
		e := &nodeEntry{
			addr:      addr,
			master:    slices.Contains(flags, "master"),
			failed:    slices.Contains(flags, "fail"),
			handshake: slices.Contains(flags, "handshake") || slices.Contains(flags, "noaddr"),
		}
		if f[3] != "-" {
			e.masterID = f[3]
		}
		for _, r := range f[8:] {
			if strings.HasPrefix(r, "[") {
				continue
			}
			lo, hi, ok := strings.Cut(r, "-")
			if !ok {
				hi = lo
			}
			a, err1 := strconv.Atoi(lo)
			b, err2 := strconv.Atoi(hi)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("redistest: CLUSTER NODES slot range %q", r)
			}
			e.slots = append(e.slots, [2]int{a, b})
		}
		v[f[0]] = e
	}
	return v, nil
}

// fields reads the name:value lines of CLUSTER INFO or INFO.
func fields(info string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// Slot returns the hash slot of key as Redis computes it: CRC16 (XMODEM)
// modulo 16384 of the key, or of its hash tag, the part between the first
// '{' and the first '}' after it when that part is not empty.
func Slot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	return int(crc16(key)) % Slots
}

// crc16 is CRC-16/XMODEM (polynomial 0x1021, initial value 0), the CRC of
// Redis Cluster's key slots.
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}
