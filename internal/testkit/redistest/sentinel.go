package redistest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// SentinelMaster is the name StartSentinels' sentinels monitor the
// primary by.
const SentinelMaster = "mymaster"

// SentinelConfig says what StartSentinels builds. Its zero value is one
// primary, two replicas and three sentinels with quorum 2 that declare a
// primary down after 1s.
type SentinelConfig struct {
	// Replicas of the primary (2 when 0).
	Replicas int
	// Sentinels watching it (3 when 0); the quorum is a majority.
	Sentinels int
	// DownAfter is down-after-milliseconds: how long the primary may not
	// answer before a sentinel deems it down (1s when 0).
	DownAfter time.Duration
	// Startup bounds StartSentinels (20s when 0).
	Startup time.Duration
}

// Sentinels is a primary, its replicas and the Redis Sentinels that watch
// them, every one a redis-server owned by a test on a free loopback port.
type Sentinels struct {
	cfg SentinelConfig
	// Nodes are the primary as started, then its replicas.
	Nodes []*Server
	// Watchers are the sentinel processes.
	Watchers []*Server
}

// StartSentinels starts cfg's primary, replicas and sentinels, and waits
// until every replica is online and every sentinel knows every replica
// and every other sentinel, so that a failover can start at once. They
// are stopped when the test ends. Without redis-server the test is
// skipped, or fails when FLASHSALE_TEST_REDIS=real (see ServerBin).
func StartSentinels(tb testing.TB, cfg SentinelConfig) *Sentinels {
	tb.Helper()
	bin := ServerBin(tb)
	cfg = cfg.withDefaults()
	s := &Sentinels{cfg: cfg}
	tb.Cleanup(s.stop)
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Startup)
	defer cancel()
	if err := s.start(ctx, bin); err != nil {
		tb.Fatalf("redistest: start sentinels: %v%s", err, s.logs())
	}
	return s
}

func (cfg SentinelConfig) withDefaults() SentinelConfig {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 2
	}
	if cfg.Sentinels <= 0 {
		cfg.Sentinels = 3
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = time.Second
	}
	if cfg.Startup <= 0 {
		cfg.Startup = 20 * time.Second
	}
	return cfg
}

func (s *Sentinels) start(ctx context.Context, bin string) error {
	// A replica's first sync starts at once (the default waits 5s for
	// more replicas to share the transfer).
	quick := []string{"--repl-diskless-sync-delay", "0"}
	primary, err := startServer(bin, freePort, "", quick...)
	if err != nil {
		return err
	}
	s.Nodes = append(s.Nodes, primary)
	for range s.cfg.Replicas {
		r, err := startServer(bin, freePort, "", append(quick, "--replicaof", "127.0.0.1", primary.Port())...)
		if err != nil {
			return err
		}
		s.Nodes = append(s.Nodes, r)
	}
	if err := waitFor(ctx, "replicas online", s.replicasOnline); err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(primary.Addr)
	conf := fmt.Sprintf("sentinel monitor %[1]s %[2]s %[3]s %[4]d\n"+
		"sentinel down-after-milliseconds %[1]s %[5]d\n"+
		// Bounds each step of a failover, and spaces two of them.
		"sentinel failover-timeout %[1]s 5000\n"+
		"sentinel parallel-syncs %[1]s %[6]d\n",
		SentinelMaster, host, port, s.cfg.Sentinels/2+1, s.cfg.DownAfter.Milliseconds(), s.cfg.Replicas)
	for range s.cfg.Sentinels {
		w, err := startServer(bin, freePort, conf, "--sentinel")
		if err != nil {
			return err
		}
		s.Watchers = append(s.Watchers, w)
	}
	return waitFor(ctx, "sentinels aware of every node", s.aware)
}

// replicasOnline checks that the primary has every replica online.
func (s *Sentinels) replicasOnline(ctx context.Context) error {
	info, err := redis.String(do(ctx, s.Nodes[0].Addr, "INFO", "replication"))
	if err != nil {
		return err
	}
	if n := strings.Count(info, "state=online"); n != s.cfg.Replicas {
		return fmt.Errorf("%d of %d replicas online", n, s.cfg.Replicas)
	}
	return nil
}

// aware checks that every sentinel knows every replica and every other
// sentinel.
func (s *Sentinels) aware(ctx context.Context) error {
	for _, w := range s.Watchers {
		m, err := redis.StringMap(do(ctx, w.Addr, "SENTINEL", "MASTER", SentinelMaster))
		if err != nil {
			return err
		}
		if m["num-slaves"] != strconv.Itoa(s.cfg.Replicas) || m["num-other-sentinels"] != strconv.Itoa(s.cfg.Sentinels-1) {
			return fmt.Errorf("sentinel %s knows %s replicas and %s other sentinels", w.Addr, m["num-slaves"], m["num-other-sentinels"])
		}
	}
	return nil
}

// Addrs returns the sentinels' addresses.
func (s *Sentinels) Addrs() []string {
	addrs := make([]string, len(s.Watchers))
	for i, w := range s.Watchers {
		addrs[i] = w.Addr
	}
	return addrs
}

// Primary returns the node the first sentinel that answers names the
// primary.
func (s *Sentinels) Primary(ctx context.Context) (*Server, error) {
	var errs []error
	for _, w := range s.Watchers {
		v, err := redis.Strings(do(ctx, w.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster))
		if err == nil && len(v) == 2 {
			return s.node(net.JoinHostPort(v[0], v[1]))
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

func (s *Sentinels) node(addr string) (*Server, error) {
	for _, n := range s.Nodes {
		if n.Addr == addr {
			return n, nil
		}
	}
	return nil, fmt.Errorf("redistest: the sentinels name %s, which is none of the nodes", addr)
}

// Failover asks a sentinel for a failover (SENTINEL FAILOVER) and waits
// until another node is the primary: every sentinel names it and it says
// it is a master. It returns the new primary.
func (s *Sentinels) Failover(ctx context.Context) (*Server, error) {
	old, err := s.Primary(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := do(ctx, s.Watchers[0].Addr, "SENTINEL", "FAILOVER", SentinelMaster); err != nil {
		return nil, err
	}
	return s.WaitNewPrimary(ctx, old)
}

// WaitNewPrimary waits until every sentinel names a primary other than
// old, and that node says it is a master; it returns it.
func (s *Sentinels) WaitNewPrimary(ctx context.Context, old *Server) (*Server, error) {
	var primary *Server
	err := waitFor(ctx, "a new primary", func(ctx context.Context) error {
		var err error
		if primary, err = s.agreed(ctx); err != nil {
			return err
		}
		if primary == old {
			return fmt.Errorf("the sentinels still name %s", old.Addr)
		}
		role, err := redis.Values(do(ctx, primary.Addr, "ROLE"))
		if err != nil {
			return err
		}
		if r, _ := redis.String(role[0], nil); r != "master" {
			return fmt.Errorf("%s is a %s", primary.Addr, r)
		}
		return nil
	})
	return primary, err
}

// agreed returns the primary every sentinel names.
func (s *Sentinels) agreed(ctx context.Context) (*Server, error) {
	var addr string
	for _, w := range s.Watchers {
		v, err := redis.Strings(do(ctx, w.Addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster))
		if err != nil || len(v) != 2 {
			return nil, fmt.Errorf("sentinel %s: %v %w", w.Addr, v, err)
		}
		a := net.JoinHostPort(v[0], v[1])
		if addr != "" && a != addr {
			return nil, fmt.Errorf("the sentinels name %s and %s", addr, a)
		}
		addr = a
	}
	return s.node(addr)
}

func (s *Sentinels) stop() {
	for _, n := range slices.Concat(s.Watchers, s.Nodes) {
		n.Stop()
	}
}

// logs returns the tail of every process's log, for a failure message.
func (s *Sentinels) logs() string { return logTails(slices.Concat(s.Nodes, s.Watchers)) }
