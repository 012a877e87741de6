package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/transport"
)

// embeddedAddr is the --redis-addr value that starts the in-process store.
const embeddedAddr = "embedded"

// redisFlags are the flags of every command that talks to Redis.
func redisFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "redis-addr",
			Usage:   "Redis `address` (host:port or redis://user:pass@host:port/db); \"embedded\" starts an in-process store for trying things out",
			EnvVars: []string{"REDIS_ADDR"},
			Value:   "localhost:6379",
		},
		clusterFlag(),
		&cli.StringFlag{
			Name:    "redis-sentinel",
			Usage:   "Redis Sentinel `addresses` (host:port,…): find the primary through them and follow its failovers (with --redis-master)",
			EnvVars: []string{"FLASHSALE_REDIS_SENTINEL"},
		},
		&cli.StringFlag{
			Name:    "redis-master",
			Usage:   "with --redis-sentinel: the `name` the sentinels monitor the primary by",
			EnvVars: []string{"FLASHSALE_REDIS_MASTER"},
		},
		&cli.DurationFlag{
			Name:    "redis-timeout",
			Usage:   "bound on one Redis call",
			EnvVars: []string{"FLASHSALE_REDIS_TIMEOUT"},
			Value:   transport.DefaultTimeout,
		},
	}
}

// clusterFlag names a Redis Cluster's seed nodes.
func clusterFlag() cli.Flag {
	return &cli.StringFlag{
		Name:    "redis-cluster",
		Usage:   "Redis Cluster seed `nodes` (host:port,…): route each product to its master (a cluster is also detected at --redis-addr)",
		EnvVars: []string{"FLASHSALE_REDIS_CLUSTER"},
	}
}

// clusterSeeds reads --redis-cluster.
func clusterSeeds(c *cli.Context) []string { return addrList(c.String("redis-cluster")) }

// addrList reads a comma-separated list of addresses.
func addrList(s string) []string {
	var addrs []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			addrs = append(addrs, a)
		}
	}
	return addrs
}

// sentinelConfig reads --redis-sentinel and --redis-master.
func sentinelConfig(c *cli.Context) (transport.SentinelConfig, error) {
	cfg := transport.SentinelConfig{Addrs: addrList(c.String("redis-sentinel")), Master: c.String("redis-master")}
	switch {
	case cfg.Enabled() && cfg.Master == "":
		return cfg, usageErrorf(c, "--redis-sentinel needs the name the sentinels monitor the primary by: add --redis-master NAME (FLASHSALE_REDIS_MASTER), e.g. --redis-master mymaster")
	case !cfg.Enabled() && cfg.Master != "":
		return cfg, usageErrorf(c, "--redis-master %q needs the sentinels to ask: add --redis-sentinel host:port,… (FLASHSALE_REDIS_SENTINEL)", cfg.Master)
	case cfg.Enabled() && c.String("redis-cluster") != "":
		return cfg, usageErrorf(c, "--redis-sentinel and --redis-cluster exclude each other: a cluster fails over by itself")
	}
	return cfg, nil
}

// poolFlags size the Redis connection pool of a long-running command.
func poolFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{
			Name:    "redis-pool-size",
			Usage:   "most pooled Redis connections (admin work, health checks, NOSCRIPT reloads)",
			EnvVars: []string{"FLASHSALE_REDIS_POOL_SIZE"},
			Value:   transport.DefaultMaxActive,
		},
		&cli.IntFlag{
			Name:    "redis-batch-conns",
			Usage:   "dedicated connections on which purchases from all clients are pipelined to Redis in batches",
			EnvVars: []string{"FLASHSALE_REDIS_BATCH_CONNS"},
			Value:   transport.DefaultBatchConns,
		},
		&cli.IntFlag{
			Name:    "redis-batch-max",
			Usage:   "most scripts in one pipelined batch",
			EnvVars: []string{"FLASHSALE_REDIS_BATCH_MAX"},
			Value:   transport.DefaultMaxBatch,
		},
		&cli.IntFlag{
			Name:    "redis-max-idle",
			Usage:   "idle Redis connections kept warm",
			EnvVars: []string{"FLASHSALE_REDIS_MAX_IDLE"},
			Value:   transport.DefaultMaxIdle,
		},
	}
}

func logFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{
			Name:    "log-level",
			Usage:   "`level`: debug, info, warn, error",
			EnvVars: []string{"FLASHSALE_LOG_LEVEL"},
			Value:   "info",
		},
		&cli.StringFlag{
			Name:    "log-format",
			Usage:   "`format`: json, console, or auto (console on a terminal, json otherwise)",
			EnvVars: []string{"FLASHSALE_LOG_FORMAT"},
			Value:   "auto",
		},
	}
}

func concat(sets ...[]cli.Flag) []cli.Flag {
	var all []cli.Flag
	for _, s := range sets {
		all = append(all, s...)
	}
	return all
}

// newLogger builds the one logger of a command from its log flags.
func newLogger(c *cli.Context, w io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(c.String("log-level"))
	if err != nil || c.String("log-level") == "" {
		return zerolog.Nop(), usageErrorf(c, "unknown --log-level %q", c.String("log-level"))
	}
	switch format := c.String("log-format"); format {
	case "auto":
		if isTerminal(w) {
			w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly}
		}
	case "console":
		w = zerolog.ConsoleWriter{Out: w, TimeFormat: time.TimeOnly, NoColor: !isTerminal(w)}
	case "json":
	default:
		return zerolog.Nop(), usageErrorf(c, "unknown --log-format %q (json, console, auto)", format)
	}
	return zerolog.New(w).Level(level).With().Timestamp().Logger(), nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// redisSetup is how a command reaches Redis: the pool, and for a server
// the batcher that pipelines its scripts.
type redisSetup struct {
	transport.PoolConfig
	Batch *transport.BatcherConfig // nil: every call takes a pooled connection
	// Cluster holds Redis Cluster seed nodes; a cluster is also detected
	// at Addr.
	Cluster []string
}

// store is an engine with the Redis behind it.
type store struct {
	*engine.Engine
	addr    string
	close   func()
	batcher interface{ QueueDepth() int } // nil unless redisSetup.Batch is set
	// cpu reads the CPU time of every Redis process behind the store.
	cpu func(context.Context) ([]transport.NodeCPU, error)
}

// redisConfig reads the Redis flags of c. Only serve may start the
// embedded store: any other command would get an empty store of its own.
func redisConfig(c *cli.Context, pool redisSetup, allowEmbedded bool) (redisSetup, error) {
	pool.Addr, pool.Timeout = c.String("redis-addr"), c.Duration("redis-timeout")
	pool.Cluster = clusterSeeds(c)
	var err error
	if pool.Sentinel, err = sentinelConfig(c); err != nil {
		return pool, err
	}
	if pool.Sentinel.Enabled() && strings.EqualFold(pool.Addr, embeddedAddr) {
		return pool, usageErrorf(c, "--redis-sentinel finds a Redis primary; it cannot be used with --redis-addr embedded")
	}
	if !allowEmbedded && strings.EqualFold(pool.Addr, embeddedAddr) {
		return pool, usageErrorf(c, "--redis-addr embedded only works for serve and demo; use the address that 'serve --redis-addr embedded' logged")
	}
	return pool, nil
}

// openStore connects to the Redis at pool.Addr (starting the embedded store
// for "embedded"), loads the scripts, and fails fast with a clear message
// when Redis does not answer.
func openStore(ctx context.Context, log zerolog.Logger, pool redisSetup, opts ...engine.Option) (*store, error) {
	ctx, cancel := context.WithTimeout(ctx, max(pool.Timeout, transport.DefaultDialTimeout))
	defer cancel()
	pool.Logger = log.With().Str("component", "transport").Logger() // the pool's, its batcher's, a cluster's
	if len(pool.Cluster) > 0 {
		return openCluster(ctx, pool, opts...)
	}
	closeEmbedded := func() {}
	if strings.EqualFold(pool.Addr, embeddedAddr) {
		mr, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("start embedded store: %w", err)
		}
		pool.Addr, closeEmbedded = mr.Addr(), mr.Close
		log.Warn().Str("redis_addr", pool.Addr).
			Msg("EMBEDDED STORE: in-process, in-memory, no persistence: for trying things out, NOT for production. Reach it with REDIS_ADDR=" + pool.Addr)
	}
	p := transport.NewPool(pool.PoolConfig)
	err := p.Load(ctx, engine.Scripts()...)
	if err == nil {
		err = p.CheckDurability(ctx)
	}
	isCluster := false
	if err == nil {
		isCluster, err = transport.IsCluster(ctx, p)
	}
	if err != nil {
		p.Close()
		closeEmbedded()
		if pool.Sentinel.Enabled() {
			return nil, sentinelError(pool.Sentinel, err)
		}
		return nil, redisError(pool.Addr, err)
	}
	if isCluster {
		p.Close()
		pool.Cluster = []string{pool.Addr}
		return openCluster(ctx, pool, opts...)
	}
	addr := pool.Addr
	if pool.Sentinel.Enabled() {
		addr = "sentinel:" + pool.Sentinel.Master
	}
	st := &store{
		Engine: engine.New(p, opts...),
		addr:   addr,
		close:  func() { p.Close(); closeEmbedded() },
		cpu:    p.CPU,
	}
	if pool.Batch != nil {
		b := transport.NewBatcher(p, *pool.Batch)
		st.Engine, st.batcher = engine.New(b, opts...), b
		st.close = func() { b.Close(); p.Close(); closeEmbedded() }
	}
	return st, nil
}

// openCluster opens a store on the Redis Cluster whose seeds pool.Cluster
// names.
func openCluster(ctx context.Context, pool redisSetup, opts ...engine.Option) (*store, error) {
	seeds := make([]string, len(pool.Cluster))
	for i, a := range pool.Cluster {
		seeds[i] = hostPort(a)
	}
	cl, err := transport.NewCluster(ctx, transport.ClusterConfig{Seeds: seeds, Pool: pool.PoolConfig, Batch: pool.Batch})
	if err == nil {
		if err = cl.Load(ctx, engine.Scripts()...); err == nil {
			err = cl.CheckDurability(ctx)
		}
		if err != nil {
			cl.Close()
		}
	}
	if err != nil {
		return nil, redisError(strings.Join(pool.Cluster, ","), err)
	}
	st := &store{Engine: engine.New(cl, opts...), addr: pool.Cluster[0], close: func() { cl.Close() }, cpu: cl.CPU}
	if pool.Batch != nil {
		st.batcher = cl
	}
	return st, nil
}

// hostPort is the host:port of a seed given as host:port or redis:// URL.
func hostPort(addr string) string {
	if u, err := url.Parse(addr); err == nil && (u.Scheme == "redis" || u.Scheme == "rediss") {
		return u.Host
	}
	return addr
}

// redisError says what to do when the Redis at addr does not answer.
func redisError(addr string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redis at %s: %w: is Redis running at %s? start it with `redis-server`, or set REDIS_ADDR (--redis-addr)", addr, err, addr)
	}
	return fmt.Errorf("redis at %s: %w", addr, err)
}

// sentinelError says what to do when the primary the sentinels name does
// not answer.
func sentinelError(cfg transport.SentinelConfig, err error) error {
	return fmt.Errorf("redis master %q of sentinels %s: %w: are the sentinels up and monitoring %q (SENTINEL MASTERS), and is its primary up? check --redis-sentinel and --redis-master",
		cfg.Master, strings.Join(cfg.Addrs, ","), err, cfg.Master)
}

// openStoreFlags opens the store that c's Redis flags name.
func openStoreFlags(c *cli.Context, log zerolog.Logger, pool redisSetup, allowEmbedded bool, opts ...engine.Option) (*store, error) {
	pool, err := redisConfig(c, pool, allowEmbedded)
	if err != nil {
		return nil, err
	}
	return openStore(c.Context, log, pool, opts...)
}
