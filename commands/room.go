package commands

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/engine"
)

// The waiting room's operator side: admin room gives a product a room or
// changes a live one; admin status shows it (roomLines, roomJSON).

// adminRoomUsage is admin room's usage line.
const adminRoomUsage = "give a product a waiting room, or change a live room's opening or rate (its line is kept): from then on it sells only to customers the room admitted"

// adminRoomFlags are admin room's own flags.
func adminRoomFlags() []cli.Flag {
	return []cli.Flag{&cli.StringFlag{Name: "opens-at", Usage: "the room opens at `WHEN`: an RFC 3339 time, or +DURATION from now (+0s: now); joins before it are shuffled at the opening (default: now for a new room, unchanged for a live one)"},
		&cli.Int64Flag{Name: "admit", Usage: "admit `N` customers a second, for the product over all servers"}}
}

func adminRoom(a *adminCtx) error {
	as, err := args(a.Context, "ID")
	if err != nil {
		return err
	}
	room, err := roomFlags(a)
	if err != nil {
		return err
	}
	st, err := a.store.SetRoom(a.Context.Context, as[0], room)
	if errors.Is(err, engine.ErrRoomSharded) {
		return fmt.Errorf("%w: a room lives in one Redis slot; re-create the product without --shards ('flashsale admin init %s N --force') to give it one", err, as[0])
	}
	if err != nil {
		return err
	}
	verb := "changed (its line is kept)"
	if st.Created {
		verb = "created"
	}
	note := ""
	if !room.OpensAt.IsZero() && !st.OpensAt.Equal(room.OpensAt.Truncate(time.Millisecond)) {
		note = "  the room had opened already: its opening stays\n"
	}
	return a.print(map[string]any{"product_id": as[0], "created": st.Created, "opens_at": wireTime(st.OpensAt),
		"rate": st.Rate, "joined": st.Joined},
		"✓ Waiting room of '%s' %s: %s, admits %d a second; %s in line\n%s",
		as[0], verb, openingText(st.OpensAt, time.Now()), st.Rate, plural(st.Joined, "customer"), note)
}

// roomFlags reads admin room's --opens-at and --admit.
func roomFlags(a *adminCtx) (engine.Room, error) {
	if !a.IsSet("admit") {
		return engine.Room{}, usageErrorf(a.Context, "admin room needs --admit N, the customers it admits a second")
	}
	r := engine.Room{Rate: a.Int64("admit")}
	if r.Rate <= 0 {
		return r, usageErrorf(a.Context, "--admit must be a whole number of customers a second, 1 or more, got %d", r.Rate)
	}
	var err error
	if a.IsSet("opens-at") {
		r.OpensAt, err = parseWhen(a.String("opens-at"), time.Now())
		if err != nil {
			return r, usageErrorf(a.Context, "--opens-at: %v", err)
		}
	}
	return r, nil
}

// errWhen says what WHEN may be.
var errWhen = errors.New("want an RFC 3339 time such as 2026-11-27T09:00:00Z, or +DURATION from now such as +30s (+0s: now)")

// parseWhen reads WHEN: an RFC 3339 time, or +DURATION after now.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if d, ok := strings.CutPrefix(s, "+"); ok {
		dur, err := time.ParseDuration(d)
		if err != nil || dur < 0 {
			return time.Time{}, fmt.Errorf("%w, got %q", errWhen, s)
		}
		return now.Add(dur), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w, got %q", errWhen, s)
	}
	return t, nil
}

// openingText says when a room opens, or since when it is open, seen at
// now: "opens 2026-11-27T09:00:00Z (in 30s)", "open since … (12s ago)",
// "open since … (just now)".
func openingText(opens, now time.Time) string {
	if d := opens.Sub(now); d > 0 {
		return fmt.Sprintf("opens %s (in %s)", wireTime(opens), roughly(d))
	}
	if d := now.Sub(opens); d >= time.Second {
		return fmt.Sprintf("open since %s (%s ago)", wireTime(opens), roughly(d))
	}
	return fmt.Sprintf("open since %s (just now)", wireTime(opens))
}

// roughly is d rounded for people: to the second from a second up.
func roughly(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// roomLines are admin status's lines for a product's room.
func roomLines(b *strings.Builder, r engine.RoomInfo) {
	fmt.Fprintf(b, "Waiting Room:      %s, admits %d a second\n", openingText(r.OpensAt, r.Now), r.Rate)
	fmt.Fprintf(b, "Room Line:         %d joined, %d admitted, %d places admitted by now\n", r.Joined, r.Admitted, r.Cursor)
	if r.Paused {
		b.WriteString("Room Paused:       no unit left: the waiting are told SOLD_OUT until units come back\n")
	}
}

// roomJSON is admin status --json's "room" object.
func roomJSON(r engine.RoomInfo) map[string]any {
	return map[string]any{"opens_at": wireTime(r.OpensAt), "open": r.Open(), "rate": r.Rate, "joined": r.Joined,
		"admitted": r.Admitted, "cursor": r.Cursor, "paused": r.Paused}
}
