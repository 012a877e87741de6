package commands

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
)

// ErrNotReady is returned by ping when the server answers but its Redis
// does not.
var ErrNotReady = errors.New("not ready")

func pingCommand() *cli.Command {
	return &cli.Command{
		Name:  "ping",
		Usage: "check a server: exit 0 only when it answers PONG and its Redis is up (for health checks)",
		Flags: oneShotFlags(),
		Action: func(c *cli.Context) error {
			if _, err := args(c); err != nil {
				return err
			}
			addr := c.String("addr")
			return oneShot(c, func(ctx context.Context, conn *client.Conn) (client.Response, error) {
				return conn.Ping(ctx)
			}, func(w io.Writer, r *client.Response) error {
				_, err := fmt.Fprintf(w, "%s from %s, redis %s\n", r.Status, addr, r.Redis)
				return err
			}, func(r *client.Response) error {
				switch {
				case r.Status != "PONG":
					return fmt.Errorf("flashsale server at %s answered %s, not PONG", addr, r.Status)
				case r.Redis != "up":
					return fmt.Errorf("%w: flashsale server at %s is up but its Redis is %s: is Redis running where serve's --redis-addr / REDIS_ADDR points? start it with `redis-server`", ErrNotReady, addr, r.Redis)
				}
				return nil
			})
		},
	}
}
