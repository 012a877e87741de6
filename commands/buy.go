package commands

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/engine"
)

func buyCommand() *cli.Command {
	return &cli.Command{
		Name:      "buy",
		Usage:     "attempt one purchase of product ID for customer USER (exit 0 only when sold, or reserved)",
		ArgsUsage: "ID USER",
		Flags: concat([]cli.Flag{
			&cli.Int64Flag{Name: "quantity", Aliases: []string{"q"}, Usage: "units, all or nothing", Value: 1},
			&cli.StringFlag{Name: "request-id", Usage: "makes the purchase retryable: the same `ID` again returns the first answer and never buys twice"},
			&cli.StringFlag{Name: "admission", Usage: "the `TOKEN` a product's waiting room admitted USER with ('flashsale wait' prints it); a product with a room sells only with it"},
		}, oneShotFlags(), userSecretFlags()),
		Action: runBuy,
	}
}

func runBuy(c *cli.Context) error {
	as, err := args(c, "ID", "USER")
	if err != nil {
		return err
	}
	req := client.Request{ProductID: as[0], UserID: as[1], RequestID: c.String("request-id"), Admission: c.String("admission")}
	if q := c.Int64("quantity"); q != 1 {
		if err := engine.ValidateQuantity(q); err != nil {
			return usageErrorf(c, "--quantity: %v", err)
		}
		req.Quantity = q
	}
	if req.Token, req.Expires, err = customerToken(c, req.UserID); err != nil {
		return err
	}
	return oneShot(c, func(ctx context.Context, conn *client.Conn) (client.Response, error) {
		return conn.Purchase(ctx, req)
	}, func(w io.Writer, r *client.Response) error {
		return printPurchase(w, req, r)
	}, func(r *client.Response) error {
		if err := answerError(r, req.ProductID); err != nil {
			return err
		}
		if r.Status != "SUCCESS" && r.Status != "RESERVED" {
			return fmt.Errorf("%w: %s", ErrNotSold, r.Status)
		}
		return nil
	})
}

// customerToken is a customer token for user good for a minute (enough for
// one request) when c has a --user-secret, else none.
func customerToken(c *cli.Context, user string) (token string, expires int64, err error) {
	signer, err := signerFrom(c)
	if err != nil || signer == nil {
		return "", 0, err
	}
	at := time.Unix(time.Now().Add(time.Minute).Unix(), 0)
	return signer.Mint(user, at), at.Unix(), nil
}

// unauthorizedLine says what an UNAUTHORIZED answer means, for people.
func unauthorizedLine(r *client.Response) string {
	return fmt.Sprintf("UNAUTHORIZED: %s (the server wants a customer token: pass --user-secret)", r.Error)
}

// printPurchase says what a purchase answer means, for people.
func printPurchase(w io.Writer, req client.Request, r *client.Response) error {
	units := max(req.Quantity, 1)
	var line string
	switch r.Status {
	case "SUCCESS":
		line = fmt.Sprintf("SUCCESS: %s bought %d of %s, order %s; %d left", req.UserID, max(r.Quantity, units), req.ProductID, r.OrderID, r.RemainingStock)
	case "RESERVED":
		line = fmt.Sprintf("RESERVED: %s holds %d of %s, order %s, until %s unless paid ('flashsale confirm %s %s %s'); %d left",
			req.UserID, max(r.Quantity, units), req.ProductID, r.OrderID, wireTime(time.UnixMilli(r.ExpiresAt)),
			req.ProductID, req.UserID, r.OrderID, r.RemainingStock)
	case "SOLD_OUT":
		line = fmt.Sprintf("SOLD_OUT: %s has no unit left", req.ProductID)
	case "INSUFFICIENT_STOCK":
		line = fmt.Sprintf("INSUFFICIENT_STOCK: %d of %s left, %d asked; nothing sold", r.RemainingStock, req.ProductID, units)
	case "ALREADY_PURCHASED":
		line = fmt.Sprintf("ALREADY_PURCHASED: %s may hold at most %d of %s and holds %d; nothing sold", req.UserID, r.Limit, req.ProductID, r.Held)
	case "NOT_STARTED":
		line = fmt.Sprintf("NOT_STARTED: the sale of %s opens at %s", req.ProductID, r.Start)
	case "ENDED":
		line = fmt.Sprintf("ENDED: the sale of %s closed at %s", req.ProductID, r.End)
	case "RATE_LIMITED":
		line = fmt.Sprintf("RATE_LIMITED: too many attempts; retry after %s", retryAfter(r))
	case "UNAUTHORIZED":
		line = unauthorizedLine(r)
	default:
		line = r.Status
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
