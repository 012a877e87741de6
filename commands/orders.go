package commands

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
)

// ErrNotSettled is returned by confirm and cancel when the server answered
// but the reservation did not end as asked (EXPIRED, RELEASED,
// ALREADY_PAID).
var ErrNotSettled = errors.New("not settled as asked")

// orderCommand is confirm (want PAID) or cancel (want RELEASED): one call
// on a reservation a purchase answered RESERVED.
func orderCommand(name, usage, want string, call func(*client.Conn, context.Context, client.OrderRequest) (client.Response, error)) *cli.Command {
	return &cli.Command{
		Name:      name,
		Usage:     usage,
		ArgsUsage: "ID USER ORDER_ID",
		Flags:     concat(oneShotFlags(), userSecretFlags()),
		Action: func(c *cli.Context) error {
			as, err := args(c, "ID", "USER", "ORDER_ID")
			if err != nil {
				return err
			}
			req := client.OrderRequest{ProductID: as[0], UserID: as[1], OrderID: as[2]}
			if req.Token, req.Expires, err = customerToken(c, req.UserID); err != nil {
				return err
			}
			return oneShot(c, func(ctx context.Context, conn *client.Conn) (client.Response, error) {
				return call(conn, ctx, req)
			}, func(w io.Writer, r *client.Response) error {
				return printOrder(w, req, r)
			}, func(r *client.Response) error {
				if err := answerError(r, req.ProductID); err != nil {
					return err
				}
				if r.Status != want {
					return fmt.Errorf("%w: %s", ErrNotSettled, r.Status)
				}
				return nil
			})
		},
	}
}

func confirmCommand() *cli.Command {
	return orderCommand("confirm", "mark customer USER's reservation ORDER_ID of product ID paid (exit 0 only when PAID; retrying is safe)",
		"PAID", (*client.Conn).Confirm)
}

func cancelCommand() *cli.Command {
	return orderCommand("cancel", "cancel customer USER's reservation ORDER_ID of product ID: its units go back on sale at once (exit 0 only when RELEASED)",
		"RELEASED", (*client.Conn).Cancel)
}

// printOrder says what a confirm's or cancel's answer means, for people.
func printOrder(w io.Writer, req client.OrderRequest, r *client.Response) error {
	var line string
	switch r.Status {
	case "PAID":
		line = fmt.Sprintf("PAID: order %s of %s is %s's, %d unit(s)", req.OrderID, req.ProductID, req.UserID, r.Quantity)
	case "RELEASED":
		line = fmt.Sprintf("RELEASED: order %s of %s was cancelled; its %d unit(s) are back on sale (%d left)", req.OrderID, req.ProductID, r.Quantity, r.RemainingStock)
	case "EXPIRED":
		line = fmt.Sprintf("EXPIRED: order %s of %s was not paid in time; its units went back on sale", req.OrderID, req.ProductID)
	case "ALREADY_PAID":
		line = fmt.Sprintf("ALREADY_PAID: order %s of %s is paid; nothing changed", req.OrderID, req.ProductID)
	case "UNAUTHORIZED":
		line = unauthorizedLine(r)
	default:
		line = r.Status
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
