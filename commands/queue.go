package commands

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/server"
	"github.com/flashsale/flashsale/wire"
)

// The waiting room's buyer side: join takes a place, wait polls it until
// admitted, and buy --admission buys with the admission.

// ErrNotAdmitted is returned by join, wait and buy when the room admitted
// no one: the product sold out, the wait ran past --timeout, or a purchase
// came without a valid admission.
var ErrNotAdmitted = errors.New("not admitted")

// Bounds of wait's pause between two polls: never faster than the
// server's cache answers anew, nor slower than a few seconds.
const (
	minPollEvery = server.DefaultPollInterval
	maxPollPause = 5 * time.Second
)

func joinCommand() *cli.Command {
	return &cli.Command{
		Name:      "join",
		Usage:     "put customer USER in the waiting room of product ID: prints the ticket to wait with (joining again gives the same one; exit 0 when WAITING)",
		ArgsUsage: "ID USER",
		Flags:     concat(oneShotFlags(), userSecretFlags()),
		Action:    runJoin,
	}
}

func runJoin(c *cli.Context) error {
	as, err := args(c, "ID", "USER")
	if err != nil {
		return err
	}
	req := client.JoinRequest{ProductID: as[0], UserID: as[1]}
	if req.Token, req.Expires, err = customerToken(c, req.UserID); err != nil {
		return err
	}
	return oneShot(c, func(ctx context.Context, conn *client.Conn) (client.Response, error) {
		return conn.Join(ctx, req)
	}, func(w io.Writer, r *client.Response) error {
		return printRoom(w, req.ProductID, r)
	}, roomOutcome(req.ProductID, "WAITING"))
}

func waitCommand() *cli.Command {
	return &cli.Command{
		Name:      "wait",
		Usage:     "poll the waiting room of product ID with TICKET (from join) until ADMITTED, then print the admission to buy with (exit 0 only when admitted)",
		ArgsUsage: "ID TICKET",
		Flags: concat([]cli.Flag{
			&cli.DurationFlag{Name: "every", Usage: fmt.Sprintf("poll every `DURATION` (at least %s: the server answers a ticket from its cache that long), more slowly while the wait is long", minPollEvery), Value: 500 * time.Millisecond},
		}, serverFlags(&cli.DurationFlag{Name: "timeout", Usage: "bound on the whole wait: the connect, every poll and the answers", Value: 10 * time.Minute})),
		Action: runWait,
	}
}

func runWait(c *cli.Context) error {
	as, err := args(c, "ID", "TICKET")
	if err != nil {
		return err
	}
	product, ticket, every := as[0], as[1], c.Duration("every")
	if every < minPollEvery {
		return usageErrorf(c, "--every must be at least %s (polling faster gets the server's cached answer), got %s", minPollEvery, every)
	}
	progress := func(r *client.Response) {}
	if !c.Bool("json") {
		progress = func(r *client.Response) { fmt.Fprintln(c.App.ErrWriter, "WAITING: "+placeText(r)) }
	}
	return oneShot(c, func(ctx context.Context, conn *client.Conn) (client.Response, error) {
		return waitAdmitted(ctx, conn, product, ticket, every, progress)
	}, func(w io.Writer, r *client.Response) error {
		if r.Status == "WAITING" {
			return nil // progress said it
		}
		return printRoom(w, product, r)
	}, roomOutcome(product, "ADMITTED"))
}

// waitAdmitted polls ticket until an answer other than WAITING, telling
// progress of each WAITING with a new position. When ctx's deadline
// passes first it returns the last WAITING; when ctx is cancelled (Ctrl-C),
// ErrInterrupted.
func waitAdmitted(ctx context.Context, conn *client.Conn, product, ticket string, every time.Duration,
	progress func(*client.Response)) (client.Response, error) {
	var last client.Response
	for {
		r, err := conn.QueueStatus(ctx, product, ticket)
		switch {
		case err != nil && last.Status != "" && ctx.Err() != nil:
			return waitEnded(ctx, last)
		case err != nil || r.Status != "WAITING":
			return r, err
		}
		if last.Status == "" || r.Position != last.Position || r.Has != last.Has {
			progress(&r)
		}
		last = r
		t := time.NewTimer(pollPause(&r, every))
		select {
		case <-ctx.Done():
			t.Stop()
			return waitEnded(ctx, last)
		case <-t.C:
		}
	}
}

// waitEnded is what a wait ended by ctx returns: the last WAITING at the
// deadline, ErrInterrupted when ctx was cancelled.
func waitEnded(ctx context.Context, last client.Response) (client.Response, error) {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return last, nil
	}
	return last, fmt.Errorf("wait: %w", ErrInterrupted)
}

// pollPause is how long to wait before the next poll after r: every, or
// half the estimated wait when that is longer, at most maxPollPause.
func pollPause(r *client.Response, every time.Duration) time.Duration {
	eta := time.Duration(r.ETAMS) * time.Millisecond / 2
	return max(every, min(eta, maxPollPause))
}

// roomOutcome is nil for the answer want, else the error join or wait
// exits 1 with.
func roomOutcome(product, want string) func(*client.Response) error {
	return func(r *client.Response) error {
		if err := answerError(r, product); err != nil {
			return err
		}
		switch r.Status {
		case want:
			return nil
		case "WAITING":
			return fmt.Errorf("%w: still WAITING when --timeout ran out", ErrNotAdmitted)
		}
		return fmt.Errorf("%w: %s", ErrNotAdmitted, r.Status)
	}
}

// printRoom says what a join's or poll's answer means, for people.
func printRoom(w io.Writer, product string, r *client.Response) error {
	var line string
	switch r.Status {
	case "WAITING":
		line = "WAITING: " + placeText(r)
		if r.Ticket != "" {
			line += fmt.Sprintf("; ticket %s ('flashsale wait %s %s')", r.Ticket, product, r.Ticket)
		}
	case "ADMITTED":
		line = fmt.Sprintf("ADMITTED until %s: buy with --admission %s", wireTime(time.UnixMilli(r.ExpiresAt)), r.Admission)
	case "SOLD_OUT":
		line = fmt.Sprintf("SOLD_OUT: %s has no unit left; the room admits no one until units come back", product)
	case "UNAUTHORIZED":
		line = unauthorizedLine(r)
	default:
		line = r.Status
	}
	_, err := fmt.Fprintln(w, line)
	return err
}

// placeText is where a WAITING answer says the customer stands.
func placeText(r *client.Response) string {
	if r.Has&wire.FieldPosition == 0 {
		s := "place drawn at the opening"
		if r.Has&wire.FieldETA != 0 {
			s += fmt.Sprintf(", in %s", roughly(time.Duration(r.ETAMS)*time.Millisecond))
		}
		return s + " (those who join before it are shuffled)"
	}
	if r.Position <= 0 {
		return "position 0: admitted at the next poll"
	}
	s := fmt.Sprintf("position %d", r.Position)
	if r.Has&wire.FieldETA != 0 && r.ETAMS > 0 {
		s += fmt.Sprintf(", about %s to wait", roughly(time.Duration(r.ETAMS)*time.Millisecond))
	}
	return s
}
