package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/wire"
)

// ErrNotSold is returned by buy when the server answered but sold nothing.
var ErrNotSold = errors.New("not sold")

// oneShotFlags are the flags of buy, stock and ping: where the server is,
// how to reach it, how to print.
func oneShotFlags() []cli.Flag {
	return serverFlags(&cli.DurationFlag{Name: "timeout", Usage: "bound on the connect and the answer", Value: client.DefaultTimeout})
}

// serverFlags are oneShotFlags with another --timeout.
func serverFlags(timeout *cli.DurationFlag) []cli.Flag {
	return concat([]cli.Flag{
		addrFlag("flashsale server `address`"),
		timeout,
		&cli.BoolFlag{Name: "json", Usage: "print the server's answer as it sent it (one JSON object)"},
	}, clientTLSFlags())
}

// oneShot connects to the server of c's flags, runs call on the
// connection, prints the answer (as JSON with --json, else with human) and
// returns what outcome makes of it: nil for the exit status 0.
func oneShot(c *cli.Context, call func(ctx context.Context, conn *client.Conn) (client.Response, error),
	human func(w io.Writer, r *client.Response) error, outcome func(r *client.Response) error) error {
	tlsConfig, err := clientTLSConfig(c)
	if err != nil {
		return err
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return usageErrorf(c, "--timeout must be positive")
	}
	addr := c.String("addr")
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	conn, err := client.Dial(ctx, addr, client.Options{TLS: tlsConfig, Timeout: timeout, KeepAlive: -1})
	if err != nil {
		return serverError(addr, tlsConfig != nil, err)
	}
	defer conn.Close()
	r, err := call(ctx, conn)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("flashsale server at %s: no answer within --timeout %s", addr, timeout)
		}
		return serverError(addr, tlsConfig != nil, err)
	}
	if c.Bool("json") {
		_, err = c.App.Writer.Write(append(wire.AppendResponse(nil, &r), '\n'))
	} else if r.Status != "ERROR" {
		err = human(c.App.Writer, &r)
	}
	if err != nil {
		return err
	}
	return outcome(&r)
}

// answerError is the error of an ERROR answer, with what to do about an
// unknown product; nil for any other answer.
func answerError(r *client.Response, product string) error {
	if r.Status != "ERROR" {
		return nil
	}
	if product == "" {
		product = "ID"
	}
	switch r.Code {
	case "UNKNOWN_PRODUCT":
		return fmt.Errorf("unknown product %s: create it with 'flashsale admin init %s UNITS'", product, product)
	case "NOT_ADMITTED":
		return fmt.Errorf("%w (%s): join the waiting room of %s ('flashsale join %s USER'), wait for the admission ('flashsale wait %s TICKET') and buy with --admission", ErrNotAdmitted, strings.TrimPrefix(r.Error, ErrNotAdmitted.Error()+": "), product, product, product)
	case "NO_ROOM":
		return fmt.Errorf("%s has no waiting room: buy it at once ('flashsale buy %s USER')", product, product)
	}
	return fmt.Errorf("server answered ERROR %s: %s", r.Code, r.Error)
}

// window says when a sale opens and closes, "" when always open.
func window(r *client.Response) string {
	switch {
	case r.Start != "" && r.End != "":
		return ", open " + r.Start + " to " + r.End
	case r.Start != "":
		return ", opens " + r.Start
	case r.End != "":
		return ", closes " + r.End
	}
	return ""
}

// retryAfter is an answer's retry_after_ms as a duration.
func retryAfter(r *client.Response) time.Duration {
	return time.Duration(r.RetryAfterMS) * time.Millisecond
}
