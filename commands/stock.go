package commands

import (
	"context"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
)

func stockCommand() *cli.Command {
	return &cli.Command{
		Name:      "stock",
		Usage:     "ask a server for product ID's state and stock (QUERY_STOCK)",
		ArgsUsage: "ID",
		Flags:     oneShotFlags(),
		Action:    runStock,
	}
}

func runStock(c *cli.Context) error {
	as, err := args(c, "ID")
	if err != nil {
		return err
	}
	id := as[0]
	return oneShot(c, func(ctx context.Context, conn *client.Conn) (client.Response, error) {
		return conn.QueryStock(ctx, id)
	}, func(w io.Writer, r *client.Response) error {
		limit := "no per-customer limit"
		if r.Limit > 0 {
			limit = fmt.Sprintf("at most %d per customer", r.Limit)
		}
		_, err := fmt.Fprintf(w, "%s: %s, %d of %d left, %s%s\n", id, r.State, r.RemainingStock, r.Initial, limit, window(r))
		return err
	}, func(r *client.Response) error { return answerError(r, id) })
}
