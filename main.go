// Command flashsale sells limited stock to a flood of buyers without ever
// selling one unit too many. See README.md for the quick start.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/flashsale/flashsale/commands"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3", as
// goreleaser does; left "dev", the build info's version is reported (see
// commands.BuildVersion).
var version = "dev"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "flashsale:", err)
		os.Exit(commands.ExitCode(err))
	}
}

func run() error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := commands.NewApp(commands.BuildVersion(version))
	return commands.Run(ctx, app, os.Args)
}
