package commands

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

// admin init refuses a product in use (exit 1, saying what it would clear,
// changing nothing) unless --force, which says what it cleared; admin
// reset says what it cleared.
func TestAdminInitInUse(t *testing.T) {
	const used = "2 orders (2 units held by 2 customers, 2 stream entries)"
	tests := []struct {
		name     string
		flags    []string // of the first init
		sales    int
		args     []string // the second command, before the id
		wantErr  string
		want     string // in the output
		wantLeft string // remaining after
	}{
		{"fresh", nil, 0, []string{"init"}, "", "initialized with 5 units (per-user limit 1, window always open)\n", "5"},
		{"used", nil, 2, []string{"init"}, "has " + used + "; re-initialising would clear them: add --force, or use 'flashsale admin reset ", "", "8"},
		{"used --force", nil, 2, []string{"init", "--force"}, "", "initialized with 5 units (per-user limit 1, window always open)\n  cleared " + used + "\n", "5"},
		{"sharded used", []string{"--shards", "2"}, 2, []string{"init", "--shards", "2"}, "has " + used, "", "8"},
		{"sharded used --force", []string{"--shards", "2"}, 2, []string{"init", "--force", "--shards", "2"}, "", "  cleared " + used + "\n", "5"},
		{"reset", nil, 2, []string{"reset"}, "", "reset to 10 units: cleared " + used + "\n", "10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eng, id := adminProduct(t, "10", tt.flags...)
			for _, u := range []string{"ann", "bob"}[:tt.sales] {
				if r := eng.Purchase(t.Context(), engine.Request{ProductID: id, UserID: u}); r.Status != wire.StatusSuccess {
					t.Fatalf("purchase: %+v", r)
				}
			}
			args := append(append([]string{"admin"}, tt.args...), id)
			if tt.args[0] == "init" {
				args = append(args, "5")
			}
			out, err := runApp(t, args...)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("%v: %v\n%s", args, err, out)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || ExitCode(err) != 1):
				t.Fatalf("%v = %v (exit %d), want exit 1 and %q", args, err, ExitCode(err), tt.wantErr)
			case !strings.Contains(out, tt.want):
				t.Errorf("%v printed %q, want %q in it", args, out, tt.want)
			}
			if st := mustRun(t, "admin", "status", id); !strings.Contains(st, "Remaining Stock:   "+tt.wantLeft+"\n") {
				t.Errorf("after %v:\n%s\nwant %s remaining", args, st, tt.wantLeft)
			}
		})
	}
}

func TestAdminInitForceJSON(t *testing.T) {
	eng, id := adminProduct(t, "10")
	if r := eng.Purchase(t.Context(), engine.Request{ProductID: id, UserID: "ann"}); r.Status != wire.StatusSuccess {
		t.Fatalf("purchase: %+v", r)
	}
	var got struct {
		Cleared engine.Cleared `json:"cleared"`
	}
	want := engine.Cleared{Orders: 1, Held: 1, Customers: 1, Entries: 1}
	out := mustRun(t, "admin", "init", "--json", "--force", id, "3")
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Cleared != want {
		t.Errorf("init --force --json = %s (%v), want cleared %+v", out, err, want)
	}
}

// bench --init wipes a used product, as it always did, and says what it
// cleared (with --json, as init_cleared).
func TestBenchInitClears(t *testing.T) {
	raddr := redistest.Addr(t)
	addr := startServe(t, raddr)
	product := redistest.Product(t)
	run := func() string {
		return mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
			"-n", "20", "-c", "4", "--init", "5")
	}
	if out := run(); !strings.Contains(out, "--init 5: cleared 0 orders") {
		t.Errorf("first bench:\n%s", out)
	}
	var rep struct {
		Cleared *engine.Cleared `json:"init_cleared"`
	}
	out := mustRun(t, "bench", "--addr", addr, "--redis-addr", raddr, "--product", product,
		"-n", "20", "-c", "4", "--init", "5", "--json")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Cleared == nil || *rep.Cleared != (engine.Cleared{Orders: 5, Held: 5, Customers: 5, Entries: 5}) {
		t.Errorf("bench --json on a used product = %s (%v), want init_cleared of 5 orders", out, err)
	}
	out = run()
	for _, want := range []string{"--init 5: cleared 5 orders (5 units held by 5 customers, 5 stream entries)\n", "Successful:        5\n", "✓ PASS"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench on a used product lacks %q:\n%s", want, out)
		}
	}
}
