package commands

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/redistest"
)

// TestAdminOnCluster is the reproduction: admin pointed at one
// node of a 3-master cluster, by REDIS_ADDR (detected) or by
// --redis-cluster, reaches every product's master; no MOVED.
func TestAdminOnCluster(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	seed := c.Addrs()[0]
	var ids []string
	for i := range 6 { // spread over the masters
		ids = append(ids, fmt.Sprintf("%s-%d", redistest.Product(t), i))
	}
	for _, tc := range []struct {
		name string
		env  func()
	}{
		{"detected at REDIS_ADDR", func() { t.Setenv("REDIS_ADDR", seed); t.Setenv("FLASHSALE_REDIS_CLUSTER", "") }},
		{"--redis-cluster", func() {
			t.Setenv("REDIS_ADDR", "127.0.0.1:1")
			t.Setenv("FLASHSALE_REDIS_CLUSTER", strings.Join(c.Addrs()[1:], ","))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.env()
			for _, id := range ids {
				if out := mustRun(t, "admin", "init", id, "3"); !strings.Contains(out, "initialized with 3 units") {
					t.Errorf("init %s printed %q", id, out)
				}
				if out := mustRun(t, "admin", "status", id); !strings.Contains(out, "Remaining Stock:   3") {
					t.Errorf("status %s printed %q", id, out)
				}
			}
			out := mustRun(t, "admin", "verify")
			for _, id := range ids {
				if !strings.Contains(out, "✓ "+id+":") {
					t.Errorf("verify with no ID left out %s:\n%s", id, out)
				}
			}
		})
	}
	masters := map[string]bool{}
	for _, id := range ids {
		m, err := c.MasterOf(t.Context(), engine.KeysFor(id).Stock)
		if err != nil {
			t.Fatal(err)
		}
		masters[m.Addr] = true
	}
	if len(masters) < 2 {
		t.Errorf("the products all landed on %v: the test does not cross masters", masters)
	}
}
