package commands

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/metrics"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/server/dashboard"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "answer purchase attempts over the TLV protocol and HTTP",
		Description: "Listens for TLV frames and HTTP requests on one port (the first byte of a\n" +
			"connection tells which) and runs each purchase as one atomic Redis script.\n" +
			"On SIGINT/SIGTERM it stops accepting, answers every request already read,\n" +
			"then exits (bounded by --drain-timeout).",
		Flags: concat(
			[]cli.Flag{
				&cli.StringFlag{
					Name:    "listen",
					Usage:   "TCP `address` to listen on",
					EnvVars: []string{"LISTEN_ADDR"},
					Value:   ":8080",
				},
				&cli.IntFlag{
					Name:    "max-frame-size",
					Usage:   "largest payload in `bytes`; a bigger frame gets an ERROR and its connection is closed",
					EnvVars: []string{"FLASHSALE_MAX_FRAME_SIZE"},
					Value:   wire.DefaultMaxPayload,
				},
				&cli.IntFlag{
					Name:    "max-in-flight",
					Usage:   "pipelined requests one connection may have unanswered before the server stops reading it",
					EnvVars: []string{"FLASHSALE_MAX_IN_FLIGHT"},
					Value:   server.DefaultMaxInFlight,
				},
				&cli.DurationFlag{
					Name:    "request-timeout",
					Usage:   "bound on the Redis work of one request; past it the client gets ERROR UNAVAILABLE",
					EnvVars: []string{"FLASHSALE_REQUEST_TIMEOUT"},
					Value:   server.DefaultRequestTimeout,
				},
				&cli.DurationFlag{
					Name:    "write-timeout",
					Usage:   "clients that do not read their answers for this long are dropped",
					EnvVars: []string{"FLASHSALE_WRITE_TIMEOUT"},
					Value:   server.DefaultWriteTimeout,
				},
				&cli.DurationFlag{
					Name:    "request-ttl",
					Usage:   "how long a request_id is remembered, so a retry gets the original answer",
					EnvVars: []string{"FLASHSALE_REQUEST_TTL"},
					Value:   engine.DefaultRequestTTL,
				},
				&cli.DurationFlag{
					Name:    "drain-timeout",
					Usage:   "on shutdown, how long to keep answering requests already read",
					EnvVars: []string{"FLASHSALE_DRAIN_TIMEOUT"},
					Value:   server.DefaultDrainTimeout,
				},
				&cli.DurationFlag{
					Name:    "frame-timeout",
					Usage:   "once a frame has started to arrive, all of it must arrive within this (slow senders are dropped)",
					EnvVars: []string{"FLASHSALE_FRAME_TIMEOUT"},
					Value:   server.DefaultFrameTimeout,
				},
				&cli.DurationFlag{
					Name:    "idle-timeout",
					Usage:   "connections with no frame for this long are closed",
					EnvVars: []string{"FLASHSALE_IDLE_TIMEOUT"},
					Value:   server.DefaultIdleTimeout,
				},
				&cli.IntFlag{
					Name:    "max-conns",
					Usage:   "most open client connections; past it a new connection gets ERROR BUSY and is closed",
					EnvVars: []string{"FLASHSALE_MAX_CONNS"},
					Value:   server.DefaultMaxConns,
				},
				&cli.StringFlag{
					Name:    "user-rate",
					Usage:   "purchase attempts one customer may make on a product, as `N/s`, N/m or N/h, enforced inside Redis (0 = no limit)",
					EnvVars: []string{"FLASHSALE_USER_RATE"},
					Value:   "0",
				},
				&cli.IntFlag{
					Name:    "user-burst",
					Usage:   "attempts a customer may make at once within --user-rate",
					EnvVars: []string{"FLASHSALE_USER_BURST"},
					Value:   5,
				},
				&cli.StringFlag{
					Name:    "conn-rate",
					Usage:   "purchase attempts one connection may make, as `N/s` (0 = no limit); answered without a Redis call",
					EnvVars: []string{"FLASHSALE_CONN_RATE"},
					Value:   "0",
				},
				&cli.IntFlag{
					Name:    "conn-burst",
					Usage:   "attempts a connection may make at once within --conn-rate",
					EnvVars: []string{"FLASHSALE_CONN_BURST"},
					Value:   100,
				},
				&cli.StringFlag{
					Name:    "debug-addr",
					Usage:   "serve Go's pprof profiles on this `address` (e.g. 127.0.0.1:6060); empty turns it off. Keep it on loopback",
					EnvVars: []string{"FLASHSALE_DEBUG_ADDR"},
				},
				&cli.DurationFlag{
					Name:    "soldout-ttl",
					Usage:   "after Redis says SOLD_OUT, answer SOLD_OUT without Redis for up to this long (dropped at once when admin changes the product); 0 turns it off",
					EnvVars: []string{"FLASHSALE_SOLDOUT_TTL"},
					Value:   engine.DefaultSoldOutTTL,
				},
				&cli.StringFlag{
					Name:    "durability",
					Usage:   "what a sale waits for before SUCCESS: `none`, replicas:N (WAIT), aof or aof:N (WAITAOF, Redis 7.2+)",
					EnvVars: []string{"FLASHSALE_DURABILITY"},
					Value:   "none",
				},
				&cli.StringFlag{
					Name:    "http-listen",
					Usage:   "also serve HTTP only on this TCP `address` (--listen serves HTTP and TLV alike); empty: none",
					EnvVars: []string{"FLASHSALE_HTTP_LISTEN"},
				},
				&cli.DurationFlag{
					Name:    "first-frame-timeout",
					Usage:   "a new connection must send its first byte within this (or --idle-timeout, if shorter); TLS handshakes get as long",
					EnvVars: []string{"FLASHSALE_FIRST_FRAME_TIMEOUT"},
					Value:   server.DefaultFirstFrameTimeout,
				},
				&cli.DurationFlag{
					Name:    "durability-timeout",
					Usage:   "bound on the durability wait; past it the client gets ERROR NOT_DURABLE",
					EnvVars: []string{"FLASHSALE_DURABILITY_TIMEOUT"},
					Value:   transport.DefaultDurabilityTimeout,
				},
			},
			redisFlags(), poolFlags(), logFlags(), serverTLSFlags(), userSecretFlags(), jwtFlags(),
		),
		Action: runServe,
	}
}

// startSweeper runs eng's Sweeper, which releases expired reservations on
// time (see engine.Sweeper), until the returned stop is called; its
// failures are logged at most once a second.
func startSweeper(ctx context.Context, eng *engine.Engine, log zerolog.Logger) (stop func()) {
	failures := log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Second})
	sw := eng.NewSweeper(engine.SweeperConfig{OnError: func(err error) {
		failures.Warn().Err(err).Msg("sweeping expired reservations failed; retrying (purchases still release them)")
	}})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sw.Run(ctx)
	}()
	return func() { cancel(); <-done }
}

func runServe(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf(c, "serve takes no arguments, got %q", c.Args().Slice())
	}
	log, err := newLogger(c, os.Stderr)
	if err != nil {
		return err
	}
	tlsConfig, err := serverTLSConfig(c)
	if err != nil {
		return err
	}
	// The shop secret signs the waiting room's tickets and admissions too
	// (under a key of their own); without it the engine keeps one in Redis.
	userSecret, err := userSecretFrom(c)
	if err != nil {
		return err
	}
	signer, err := signerOf(c, userSecret)
	if err != nil {
		return err
	}
	jwtVerifier, err := jwtVerifierFrom(c)
	if err != nil {
		return err
	}
	userRate, err := engine.ParseRate(c.String("user-rate"), c.Int("user-burst"))
	if err != nil {
		return usageErrorf(c, "--user-rate: %v", err)
	}
	connRate, err := engine.ParseRate(c.String("conn-rate"), c.Int("conn-burst"))
	if err != nil {
		return usageErrorf(c, "--conn-rate: %v", err)
	}
	durability, err := transport.ParseDurability(c.String("durability"), c.Duration("durability-timeout"))
	if err != nil {
		return usageErrorf(c, "--durability: %v", err)
	}
	m := metrics.New(metrics.Config{Version: c.App.Version})
	st, err := openStoreFlags(c, log, redisSetup{
		PoolConfig: transport.PoolConfig{
			MaxActive:  c.Int("redis-pool-size"),
			MaxIdle:    c.Int("redis-max-idle"),
			Durability: durability,
		},
		Batch: &transport.BatcherConfig{Conns: c.Int("redis-batch-conns"), MaxBatch: c.Int("redis-batch-max"), Observer: m},
	}, true, append(proofOptions(signer, jwtVerifier), engine.WithRoomSecret(userSecret), engine.WithRequestTTL(c.Duration("request-ttl")),
		engine.WithUserRate(userRate), engine.WithSoldOutCache(c.Duration("soldout-ttl")), engine.WithHoldObserver(m), engine.WithRoomObserver(m))...)
	if err != nil {
		return err
	}
	defer st.close()
	m.WatchEngine(st.Engine)
	m.WatchBatcher(st.batcher)

	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	var httpLn net.Listener
	if addr := c.String("http-listen"); addr != "" {
		if httpLn, err = net.Listen("tcp", addr); err != nil {
			ln.Close()
			return fmt.Errorf("listen (--http-listen): %w", err)
		}
		log.Info().Str("http_listen", httpLn.Addr().String()).Msg("HTTP only on a second address")
	}
	if tlsConfig != nil {
		ln = tls.NewListener(ln, tlsConfig)
		if httpLn != nil {
			httpLn = tls.NewListener(httpLn, tlsConfig)
		}
		logServerTLS(log, c, tlsConfig)
	}
	srv := server.New(st.Engine, server.Config{
		FirstFrameTimeout: c.Duration("first-frame-timeout"),
		HandshakeTimeout:  c.Duration("first-frame-timeout"),

		MaxPayload:     c.Int("max-frame-size"),
		MaxInFlight:    c.Int("max-in-flight"),
		RequestTimeout: c.Duration("request-timeout"),
		WriteTimeout:   c.Duration("write-timeout"),
		DrainTimeout:   c.Duration("drain-timeout"),
		FrameTimeout:   c.Duration("frame-timeout"),
		IdleTimeout:    c.Duration("idle-timeout"),
		MaxConns:       c.Int("max-conns"),
		ConnRate:       connRate,
		Logger:         log,
		Metrics:        m,
		Dashboard:      dashboard.New(st.Engine, dashboard.Config{Logger: log, Waits: m}),
	})
	if addr := c.String("debug-addr"); addr != "" {
		if err := serveDebug(c.Context, addr, log); err != nil {
			return err
		}
	}
	log.Info().Str("listen", ln.Addr().String()).Str("redis_addr", st.addr).Bool("user_tokens", signer != nil).Bool("jwt", jwtVerifier != nil).
		Stringer("durability", durability).
		Msg("flashsale serving")
	defer startSweeper(c.Context, st.Engine, log)()
	if err := srv.ServeListeners(c.Context, ln, httpLn); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info().Msg("flashsale stopped")
	return nil
}
