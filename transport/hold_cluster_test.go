package transport_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/transport"
	"github.com/flashsale/flashsale/wire"
)

// TestClusterHold: on a real cluster, a product with a hold, plain and
// spread over shards, reserves, confirms, expires (by a sweep on another
// server) and verifies OK; each of its key sets, the holds and
// reservations included, lives in one slot (a script over keys of several
// slots would fail with CROSSSLOT).
func TestClusterHold(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	fs := farm(t, c, 2, transport.PoolConfig{})
	ctx := saletest.Context(t)
	base := redistest.Product(t)
	for _, shards := range []int{0, 3} {
		t.Run(fmt.Sprint("shards ", shards), func(t *testing.T) {
			id := fmt.Sprintf("%s-%d", base, shards)
			hold := engine.WithHold(300 * time.Millisecond)
			var err error
			if shards == 0 {
				err = fs[0].eng.Init(ctx, id, 6, hold, engine.WithPerUserLimit(0))
			} else {
				err = fs[0].eng.InitSharded(ctx, id, 6, shards, hold, engine.WithPerUserLimit(0))
			}
			if err != nil {
				t.Fatal(err)
			}
			sets := []string{id}
			if shards > 0 {
				if sets, err = fs[0].eng.Shards(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			for _, sid := range sets {
				k := engine.KeysFor(sid)
				for _, key := range []string{k.Holds, k.Reservations, k.Orders, k.Meta} {
					if redistest.Slot(key) != redistest.Slot(k.Stock) {
						t.Errorf("%s is not in the slot of %s", key, k.Stock)
					}
				}
			}
			var res []engine.Result
			for i := range 6 {
				r := fs[i%2].eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprintf("u%d", i)})
				if r.Status != wire.StatusReserved {
					t.Fatalf("purchase %d = %+v, want RESERVED", i, r)
				}
				res = append(res, r)
			}
			for i := range 3 { // the others' confirm on the other server
				o := engine.OrderRequest{ProductID: id, UserID: fmt.Sprintf("u%d", i), OrderID: res[i].OrderID}
				if r := fs[(i+1)%2].eng.Confirm(ctx, o); r.Status != wire.StatusPaid {
					t.Fatalf("confirm %d = %+v, want PAID", i, r)
				}
			}
			time.Sleep(time.Until(res[5].ExpiresAt) + 20*time.Millisecond)
			sw, err := fs[1].eng.Sweep(ctx, id)
			if err != nil || sw.Units != 3 {
				t.Fatalf("sweep = %+v, %v: want the 3 unpaid units released", sw, err)
			}
			o := engine.OrderRequest{ProductID: id, UserID: "u3", OrderID: res[3].OrderID}
			if r := fs[0].eng.Confirm(ctx, o); r.Status != wire.StatusExpired {
				t.Errorf("confirm after expiry = %+v, want EXPIRED", r)
			}
			a, err := fs[0].eng.Verify(ctx, id)
			if err != nil || !a.OK() || a.Paid != 3 || a.Reserved != 0 || a.Remaining != 3 {
				t.Errorf("verify = %+v, %v: want OK, 3 paid, 3 back in stock", a, err)
			}
			st, err := fs[1].eng.Status(ctx, id)
			if err != nil || st.Paid != 3 || st.Expired != 3 || st.Remaining != 3 {
				t.Errorf("status = %+v, %v: want 3 paid, 3 expired, 3 left", st, err)
			}
		})
	}
}
