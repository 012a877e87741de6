package commands

import (
	"fmt"
	"net"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "answer purchase attempts over the TLV protocol",
		Description: "Listens for TLV frames and runs each purchase as one atomic Redis script.\n" +
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
					Value:   engine.DefaultMaxInFlight,
				},
				&cli.DurationFlag{
					Name:    "request-timeout",
					Usage:   "bound on the Redis work of one request; past it the client gets ERROR UNAVAILABLE",
					EnvVars: []string{"FLASHSALE_REQUEST_TIMEOUT"},
					Value:   engine.DefaultRequestTimeout,
				},
				&cli.DurationFlag{
					Name:    "write-timeout",
					Usage:   "clients that do not read their answers for this long are dropped",
					EnvVars: []string{"FLASHSALE_WRITE_TIMEOUT"},
					Value:   engine.DefaultWriteTimeout,
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
					Value:   engine.DefaultDrainTimeout,
				},
			},
			redisFlags(), poolFlags(), logFlags(),
		),
		Action: runServe,
	}
}

func runServe(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf(c, "serve takes no arguments, got %q", c.Args().Slice())
	}
	log, err := newLogger(c, os.Stderr)
	if err != nil {
		return err
	}
	st, err := openStoreFlags(c, log, engine.PoolConfig{
		MaxActive: c.Int("redis-pool-size"),
		MaxIdle:   c.Int("redis-max-idle"),
	}, true, engine.WithRequestTTL(c.Duration("request-ttl")))
	if err != nil {
		return err
	}
	defer st.close()

	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := engine.NewServer(st.Engine, engine.ServerConfig{
		MaxPayload:     c.Int("max-frame-size"),
		MaxInFlight:    c.Int("max-in-flight"),
		RequestTimeout: c.Duration("request-timeout"),
		WriteTimeout:   c.Duration("write-timeout"),
		DrainTimeout:   c.Duration("drain-timeout"),
		Logger:         log,
	})
	log.Info().Str("listen", ln.Addr().String()).Str("redis_addr", st.addr).
		Msg("flashsale serving")
	if err := srv.Serve(c.Context, ln); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info().Msg("flashsale stopped")
	return nil
}
