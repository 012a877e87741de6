package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// TestAdminSharded: restock, release, reset and buyers of a product over 4
// shards act on the product, and verify stays OK after each.
func TestAdminSharded(t *testing.T) {
	eng, id := adminProduct(t, "4", "--shards", "4")
	var orders []string
	for i := range 4 {
		r := eng.Purchase(t.Context(), engine.Request{ProductID: id, UserID: fmt.Sprint("u", i)})
		if r.Status != wire.StatusSuccess {
			t.Fatalf("purchase %d: %+v", i, r)
		}
		orders = append(orders, r.OrderID)
	}
	for _, tt := range []struct {
		args []string
		want []string // in the output
		left int      // units remaining after
	}{
		{[]string{"buyers", id}, []string{"(4 total)", "u0", "u1", "u2", "u3"}, 0},
		{[]string{"restock", id, "6"}, []string{"restocked with 6 units: 6 remaining, initial 10"}, 6},
		{[]string{"release", "--user", "u2", id, orders[2]}, []string{"released: 1 unit(s) of u2 back in stock, "}, 7},
		{[]string{"buyers", "--limit", "2", id}, []string{"(3 total)", "… and 1 more"}, 7},
		{[]string{"reset", id}, []string{"reset to 10 units"}, 10},
		{[]string{"buyers", id}, []string{"(0 total)"}, 10},
	} {
		out := mustRun(t, append([]string{"admin"}, tt.args...)...)
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("admin %v printed %q, want %q in it", tt.args, out, w)
			}
		}
		status := mustRun(t, "admin", "status", id)
		if !strings.Contains(status, fmt.Sprintf("Remaining Stock:   %d\n", tt.left)) {
			t.Errorf("after admin %v, status:\n%s\nwant %d remaining", tt.args, status, tt.left)
		}
		if out := mustRun(t, "admin", "verify", id); !strings.Contains(out, "✓ "+id+": OK") {
			t.Errorf("verify after admin %v printed %q", tt.args, out)
		}
	}
	if out, err := runApp(t, "admin", "restock", id+"#0", "1"); err == nil {
		t.Errorf("restock of a shard went through: %s", out)
	}
}
