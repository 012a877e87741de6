package commands

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/transport"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "zero-setup first run: embedded store, a server on loopback, a benchmark against it",
		Description: "Starts an in-process Redis-compatible store (no persistence: for trying\n" +
			"things out, not for production), initialises a product, serves it on a\n" +
			"loopback port and runs bench against it.",
		Flags:  concat(loadFlags(), logFlags(), []cli.Flag{clusterFlag()}),
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErrorf(c, "demo takes no arguments, got %q", c.Args().Slice())
	}
	if !c.IsSet("init") {
		if err := c.Set("init", "100"); err != nil {
			return err
		}
	}
	if !c.IsSet("log-level") {
		if err := c.Set("log-level", "warn"); err != nil {
			return err
		}
	}
	log, err := newLogger(c, os.Stderr)
	if err != nil {
		return err
	}
	// With --redis-cluster the demo sells on that cluster instead.
	st, err := openStore(c.Context, log, redisSetup{PoolConfig: transport.PoolConfig{Addr: embeddedAddr}, Batch: &transport.BatcherConfig{}, Cluster: clusterSeeds(c)})
	if err != nil {
		return err
	}
	defer st.close()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	cfg, err := loadConfigFrom(c, []string{ln.Addr().String()})
	if err != nil {
		ln.Close()
		return err
	}
	store := "embedded store (in memory, NOT for production)"
	if seeds := clusterSeeds(c); len(seeds) > 0 {
		store = "Redis Cluster at " + strings.Join(seeds, ",")
	}
	fmt.Fprintf(c.App.Writer, "flashsale demo: %s, server on %s,\n"+
		"selling %d units of %s to %s over %d connections…\n\n",
		store, cfg.Addrs[0], c.Int64("init"), cfg.Product, describe(cfg), cfg.Conns)

	ctx, stop := context.WithCancel(c.Context)
	srv := server.New(st.Engine, server.Config{Logger: log})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	err = benchAndCheck(c, st, cfg)
	stop()
	if serr := <-served; err == nil && serr != nil {
		err = fmt.Errorf("serve: %w", serr)
	}
	return err
}
