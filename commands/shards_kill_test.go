package commands

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// TestShardedServeSIGKILLed: a real `flashsale serve` is SIGKILLed while
// 600 customers (limit 2) race for 1,000 units over 8 shards on 3
// masters; its customers carry on at a second server, retrying with the
// same request_id. Whatever the kill cut (a purchase, a transfer between
// its debit and its credit), `admin verify --repair` finds the books
// whole, exactly 1,000 units are sold, and nobody holds more than 2.
func TestShardedServeSIGKILLed(t *testing.T) {
	c := redistest.StartCluster(t, redistest.ClusterConfig{Masters: 3})
	seed := c.Addrs()[0]
	t.Setenv("REDIS_ADDR", seed)
	t.Setenv("FLASHSALE_REDIS_CLUSTER", "")
	bin := buildFlashsale(t)
	id := redistest.Product(t)
	mustRun(t, "admin", "init", "--shards", "8", "--per-user-limit", "2", id, "1000")

	victim := freeAddr(t)
	cmd := exec.Command(bin, "serve", "--listen", victim, "--log-level", "error")
	cmd.Env = append(os.Environ(), "REDIS_ADDR="+seed)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	survivor := startServe(t, seed)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dial := func(addr string) *client.Conn {
		for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
			conn, err := client.Dial(ctx, addr, client.Options{Timeout: 5 * time.Second})
			if err == nil {
				if _, err = conn.Ping(ctx); err == nil {
					t.Cleanup(func() { conn.Close() })
					return conn
				}
				conn.Close()
			}
			if time.Since(start) > 15*time.Second {
				t.Fatalf("dial %s: %v", addr, err)
			}
		}
	}
	conns := [2]*client.Conn{dial(victim), dial(survivor)}

	var sold, soldOut atomic.Int64
	var mu sync.Mutex
	perUser := map[string]int64{}
	var wg sync.WaitGroup
	for i := range 600 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			user, at := fmt.Sprintf("k%d", i), i%2
			for n := 0; n < 3; n++ { // the third is refused
				rid := fmt.Sprintf("%s-%d", user, n)
				for try := 0; ; try++ {
					r, err := conns[at].Purchase(ctx, client.Request{ProductID: id, UserID: user, Quantity: 1, RequestID: rid})
					if err != nil || r.Status == "ERROR" {
						at = 1 // the victim is gone: carry on at the survivor, same request_id
						if try > 20 || ctx.Err() != nil {
							t.Errorf("%s: %v %+v", rid, err, r)
							return
						}
						time.Sleep(20 * time.Millisecond)
						continue
					}
					switch r.Status {
					case "SUCCESS":
						sold.Add(1)
						mu.Lock()
						perUser[user]++
						mu.Unlock()
					case "SOLD_OUT":
						soldOut.Add(1)
						return
					case "ALREADY_PURCHASED":
						return
					default:
						t.Errorf("%s: %+v", rid, r)
						return
					}
					break
				}
			}
		}()
	}
	for sold.Load() < 500 && ctx.Err() == nil {
		time.Sleep(2 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited
	wg.Wait()

	out := mustRun(t, "admin", "verify", "--repair", id)
	if !strings.Contains(out, "✓ "+id+": OK (1000 orders, 1000 units sold") {
		t.Errorf("verify --repair after the kill:\n%s", out)
	}
	if sold.Load() != 1000 || soldOut.Load() == 0 {
		t.Errorf("customers were told SUCCESS for %d units (want 1000), SOLD_OUT %d times", sold.Load(), soldOut.Load())
	}
	for u, n := range perUser {
		if n > 2 {
			t.Errorf("%s holds %d units, above the limit of 2", u, n)
		}
	}
}
