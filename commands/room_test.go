package commands

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// TestAdminRoom gives a product a room, changes it live (its line kept),
// shows it in admin status, and refuses the mistakes of admin room.
func TestAdminRoom(t *testing.T) {
	eng, p := adminProduct(t, "10")
	_, sharded := adminProduct(t, "10", "--shards", "2")
	plain := redistest.Product(t)
	mustRun(t, "admin", "init", plain, "1")
	for _, tt := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{p, "--admit", "5", "--opens-at", "+1h"}, 0, "✓ Waiting room of '" + p + "' created: opens "},
		{[]string{p, "--admit", "5", "--opens-at", "+1h"}, 0, "(in 1h0m0s), admits 5 a second; 0 customers in line"},
		{[]string{p, "--admit", "0"}, 2, "--admit must be a whole number of customers a second, 1 or more, got 0"},
		{[]string{p, "--admit", "-3"}, 2, "--admit must be"},
		{[]string{p, "--admit", "many"}, 2, "invalid value \"many\" for flag -admit"},
		{[]string{p, "--admit", "2000000"}, 2, "the rate must be between 1 and 1000000"},
		{[]string{p}, 2, "admin room needs --admit N"},
		{[]string{"--admit", "5"}, 2, "want 1 argument(s) [ID], got 0"},
		{[]string{p, "--admit", "5", "--opens-at", "tomorrow"}, 2, `--opens-at: want an RFC 3339 time such as 2026-11-27T09:00:00Z, or +DURATION from now such as +30s (+0s: now), got "tomorrow"`},
		{[]string{p, "--admit", "5", "--opens-at", "+-5s"}, 2, "+DURATION from now"},
		{[]string{p, "--admit", "5", "--opens-at", "2026-13-01"}, 2, "RFC 3339"},
		{[]string{p, "--admit", "5", "--opens-at", ""}, 2, `got ""`},
		{[]string{p + "-none", "--admit", "5"}, 1, "create it with 'flashsale admin init " + p + "-none N'"},
		{[]string{sharded, "--admit", "5"}, 1, "re-create the product without --shards"},
	} {
		out, err := runApp(t, append([]string{"admin", "room"}, tt.args...)...)
		text := out
		if err != nil {
			text += err.Error()
		}
		if ExitCode(err) != tt.exit || !strings.Contains(text, tt.want) {
			t.Errorf("admin room %q: exit %d, want %d and %q in\n%s", tt.args, ExitCode(err), tt.exit, tt.want, text)
		}
	}

	// Two customers join before the opening; the live room's rate and
	// opening change, and the line stays.
	var ticket string
	for _, u := range []string{"ann", "bob"} {
		a := eng.Join(t.Context(), engine.JoinRequest{ProductID: p, UserID: u})
		if a.Status != wire.StatusWaiting {
			t.Fatalf("join %s: %+v", u, a)
		}
		ticket = a.Ticket
	}
	status := mustRun(t, "admin", "status", p)
	if !strings.Contains(status, "Waiting Room:      opens ") || !strings.Contains(status, ", admits 5 a second\n") ||
		!strings.Contains(status, "Room Line:         2 joined, 0 admitted, 0 places admitted by now\n") {
		t.Errorf("status of an unopened room:\n%s", status)
	}
	if out := mustRun(t, "admin", "room", p, "--admit", "50"); !strings.Contains(out, "changed (its line is kept): opens ") ||
		!strings.Contains(out, "admits 50 a second; 2 customers in line") {
		t.Errorf("rate change printed %q", out)
	}
	if out := mustRun(t, "admin", "room", p, "--admit", "50", "--opens-at", "+0s"); !strings.Contains(out, "changed (its line is kept): open since ") ||
		!strings.Contains(out, "), admits 50 a second; 2 customers in line") {
		t.Errorf("opening now printed %q", out)
	}
	var st struct {
		Room *struct {
			OpensAt  string `json:"opens_at"`
			Open     bool   `json:"open"`
			Rate     int64  `json:"rate"`
			Joined   int64  `json:"joined"`
			Admitted int64  `json:"admitted"`
			Cursor   int64  `json:"cursor"`
			Paused   bool   `json:"paused"`
		} `json:"room"`
	}
	// The two are admitted at 50 a second, within 40ms of the opening.
	deadline := time.Now().Add(5 * time.Second)
	for st.Room == nil || st.Room.Cursor < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("status --json room = %+v, want 2 places admitted", st.Room)
		}
		time.Sleep(20 * time.Millisecond)
		if err := json.Unmarshal([]byte(mustRun(t, "admin", "status", "--json", p)), &st); err != nil {
			t.Fatal(err)
		}
	}
	if r := st.Room; !r.Open || r.Rate != 50 || r.Joined != 2 || r.Paused || r.OpensAt == "" {
		t.Errorf("status --json room = %+v", r)
	}
	// A poll after the opening fixes the places; the opening cannot move
	// after it.
	if a := eng.Poll(t.Context(), p, ticket); a.Status != wire.StatusAdmitted {
		t.Fatalf("poll of bob after the opening: %+v", a)
	}
	if out := mustRun(t, "admin", "room", p, "--admit", "7", "--opens-at", "+1h"); !strings.Contains(out, "open since ") ||
		!strings.Contains(out, "the room had opened already: its opening stays") {
		t.Errorf("moving an opened room's opening printed %q", out)
	}
	if out := mustRun(t, "admin", "status", "--json", plain); strings.Contains(out, `"room"`) {
		t.Errorf("status --json of a product without a room: %s", out)
	}
	if out := mustRun(t, "admin", "status", plain); strings.Contains(out, "Waiting Room") {
		t.Errorf("status of a product without a room:\n%s", out)
	}
}

// TestRoomBuyer runs a buyer through a served room: join, wait, buy with
// the admission; and the answers that are not an admission.
func TestRoomBuyer(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("FLASHSALE_ADDR", startServe(t, raddr))
	t.Setenv("REDIS_ADDR", raddr)
	p, later, none := redistest.Product(t), redistest.Product(t), redistest.Product(t)
	for _, id := range []string{p, later, none} {
		mustRun(t, "admin", "init", id, "1")
	}
	mustRun(t, "admin", "room", p, "--admit", "100", "--opens-at", "+0s")
	mustRun(t, "admin", "room", later, "--admit", "1", "--opens-at", "+1h")

	var j wire.Response
	if err := wire.DecodeResponse([]byte(mustRun(t, "join", p, "ann", "--json")), &j); err != nil || j.Status != "WAITING" || j.Ticket == "" {
		t.Fatalf("join = %+v (%v), want WAITING with a ticket", j, err)
	}
	if out := mustRun(t, "join", p, "ann"); !strings.Contains(out, "ticket "+j.Ticket+" ('flashsale wait "+p+" "+j.Ticket+"')") {
		t.Errorf("joining again printed %q, want the same ticket", out)
	}
	var a wire.Response
	if err := wire.DecodeResponse([]byte(mustRun(t, "wait", p, j.Ticket, "--json")), &a); err != nil || a.Status != "ADMITTED" || a.Admission == "" {
		t.Fatalf("wait = %+v (%v), want ADMITTED with an admission", a, err)
	}
	for _, tt := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"wait", p, j.Ticket}, 0, "ADMITTED until "},
		{[]string{"buy", p, "ann"}, 1, "not admitted (the product has a waiting room: join it and buy with the admission it gives): join the waiting room of " + p},
		{[]string{"buy", p, "bob", "--admission", a.Admission}, 1, "not admitted (the admission is another customer's)"},
		{[]string{"buy", p, "ann", "--admission", "a1.forged"}, 1, "not admitted (malformed admission"},
		{[]string{"buy", p, "ann", "--admission", a.Admission}, 0, "SUCCESS: ann bought 1 of " + p},
		{[]string{"join", p, "bob"}, 1, "SOLD_OUT: " + p + " has no unit left"},
		{[]string{"wait", p, "t1.YW5u.forged"}, 1, "UNKNOWN_TICKET"},
		{[]string{"wait", p, "nonsense"}, 1, "malformed ticket"},
		{[]string{"wait", p, j.Ticket, "--every", "10ms"}, 2, "--every must be at least 250ms"},
		{[]string{"wait", p}, 2, "want 2 argument(s) [ID TICKET]"},
		{[]string{"join", none, "ann"}, 1, none + " has no waiting room"},
		{[]string{"join", p + "-none", "ann"}, 1, "unknown product"},
		{[]string{"join", later, "cat"}, 0, "WAITING: place drawn at the opening"},
	} {
		out, err := runApp(t, tt.args...)
		text := out
		if err != nil {
			text += err.Error()
		}
		if ExitCode(err) != tt.exit || !strings.Contains(text, tt.want) {
			t.Errorf("flashsale %q: exit %d (%v), want %d and %q in\n%s", tt.args, ExitCode(err), err, tt.exit, tt.want, out)
		}
	}

	// Waiting for a room that opens in an hour ends at --timeout, still
	// waiting, having said where the customer stands.
	if err := wire.DecodeResponse([]byte(mustRun(t, "join", later, "dan", "--json")), &j); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out, err := runApp(t, "wait", later, j.Ticket, "--timeout", "700ms")
	if ExitCode(err) != 1 || !strings.Contains(fmt.Sprint(err), "still WAITING when --timeout ran out") ||
		strings.Count(out, "WAITING: place drawn at the opening") != 1 {
		t.Errorf("wait past --timeout: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("wait --timeout 700ms took %s", d)
	}
	mustRun(t, "admin", "verify", p)
}

func TestParseWhen(t *testing.T) {
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time // zero: an error
	}{
		{"+0s", now},
		{"+90s", now.Add(90 * time.Second)},
		{"+1h30m", now.Add(90 * time.Minute)},
		{"2026-11-27T09:00:00Z", now.Add(time.Hour)},
		{"2026-11-27T10:00:00+01:00", now.Add(time.Hour)},
		{"+-1s", time.Time{}},
		{"+", time.Time{}},
		{"30s", time.Time{}},
		{"now", time.Time{}},
		{"", time.Time{}},
	} {
		got, err := parseWhen(tt.in, now)
		if !got.Equal(tt.want) || (err != nil) != tt.want.IsZero() {
			t.Errorf("parseWhen(%q) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestPollPause(t *testing.T) {
	every := 500 * time.Millisecond
	for _, tt := range []struct {
		etaMS int64
		want  time.Duration
	}{
		{0, every},
		{400, every},
		{4000, 2 * time.Second},
		{60000, maxPollPause},
	} {
		if got := pollPause(&wire.Response{ETAMS: tt.etaMS}, every); got != tt.want {
			t.Errorf("pollPause(eta %dms) = %s, want %s", tt.etaMS, got, tt.want)
		}
	}
}

// TestRoomSignedWithUserSecret: serve signs the room's tokens with its
// --user-secret, so every server given it honours them, and one given
// none (which signs with the secret kept in Redis) refuses them.
func TestRoomSignedWithUserSecret(t *testing.T) {
	raddr := redistest.Addr(t)
	t.Setenv("REDIS_ADDR", raddr)
	const secret = "a shop secret of 32 bytes, or so"
	signed, again := startServe(t, raddr, "--user-secret", secret), startServe(t, raddr, "--user-secret", secret)
	unsigned := startServe(t, raddr)
	p := redistest.Product(t)
	mustRun(t, "admin", "init", p, "1")
	mustRun(t, "admin", "room", p, "--admit", "100", "--opens-at", "+0s")
	var j wire.Response
	if err := wire.DecodeResponse([]byte(mustRun(t, "join", p, "ann", "--json", "--addr", signed, "--user-secret", secret)), &j); err != nil || j.Ticket == "" {
		t.Fatalf("join = %+v (%v), want a ticket", j, err)
	}
	for _, tt := range []struct {
		addr string
		exit int
		want string
	}{
		{unsigned, 1, "not signed by this sale's servers"},
		{again, 0, "ADMITTED until "},
	} {
		out, err := runApp(t, "wait", p, j.Ticket, "--addr", tt.addr)
		if err != nil {
			out += err.Error()
		}
		if ExitCode(err) != tt.exit || !strings.Contains(out, tt.want) {
			t.Errorf("wait on %s: exit %d, want %d and %q in\n%s", tt.addr, ExitCode(err), tt.exit, tt.want, out)
		}
	}
}
