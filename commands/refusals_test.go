//go:build unix

package commands

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
)

// httpAnswer is one HTTP answer: its status, Retry-After and JSON body.
type httpAnswer struct {
	code       int
	retryAfter string
	body       string
	resp       struct{ Status, Code, Error string }
}

// httpGetOrPost POSTs body to url (GETs it when body is empty).
func httpGetOrPost(t *testing.T, url, body string) httpAnswer {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	var res *http.Response
	var err error
	if body == "" {
		res, err = c.Get(url)
	} else {
		res, err = c.Post(url, "application/json", strings.NewReader(body))
	}
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	a := httpAnswer{code: res.StatusCode, retryAfter: res.Header.Get("Retry-After"), body: string(b)}
	if err := json.Unmarshal(b, &a.resp); err != nil {
		t.Fatalf("%s: %q: %v", url, b, err)
	}
	return a
}

// TestFaultRedisOutOfMemory: Redis reaches maxmemory (noeviction) in the
// middle of a sale. Purchases answer 503 STORE_FULL with Retry-After,
// saying nothing was recorded (never 500 INTERNAL, never "outcome unknown"),
// and /readyz answers 503 with the reason. Once memory is freed the server
// sells again by itself and the books balance.
func TestFaultRedisOutOfMemory(t *testing.T) {
	rs := redistest.StartTestServer(t)
	addr := startServe(t, rs.Addr, "--request-timeout", "500ms", "--log-level", "fatal")
	p := initProduct(t, rs.Addr, 1_000_000)
	buy := func(i int) httpAnswer {
		return httpGetOrPost(t, "http://"+addr+"/", fmt.Sprintf(`{"product_id":%q,"user_id":"u%d"}`, p, i))
	}
	sold := 0
	for i := range 20 {
		if a := buy(i); a.code != http.StatusOK {
			t.Fatalf("before: %d %s", a.code, a.body)
		}
		sold++
	}
	rc := redistest.Conn(t, rs.Addr)
	saletest.Do(t, rc, "CONFIG", "SET", "maxmemory-policy", "noeviction")
	saletest.Do(t, rc, "CONFIG", "SET", "maxmemory", "1")
	for i := 100; i < 120; i++ {
		a := buy(i)
		if a.code != http.StatusServiceUnavailable || a.resp.Code != engine.CodeStoreFull || a.retryAfter == "" ||
			strings.Contains(a.body, "outcome unknown") || !strings.Contains(a.resp.Error, "store is full") {
			t.Fatalf("out of memory: %d (Retry-After %q) %s, want 503 STORE_FULL with Retry-After, not outcome unknown", a.code, a.retryAfter, a.body)
		}
	}
	if a := httpGetOrPost(t, "http://"+addr+"/readyz", ""); a.code != http.StatusServiceUnavailable || !strings.Contains(a.resp.Error, "maxmemory") {
		t.Errorf("/readyz out of memory = %d %s, want 503 saying maxmemory", a.code, a.body)
	}
	saletest.Do(t, rc, "CONFIG", "SET", "maxmemory", "0")
	deadline := time.Now().Add(3 * time.Second)
	for i := 200; ; i++ {
		a := buy(i)
		if a.code == http.StatusOK {
			sold++
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("memory freed: still %d %s", a.code, a.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The server's health check (every second) says Redis is up again.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		a := httpGetOrPost(t, "http://"+addr+"/readyz", "")
		if a.code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz after recovery = %d %s, want 200", a.code, a.body)
		}
	}
	verifyOK(t, rs.Addr, p)
	if got := faultSold(t, rs.Addr, p); got != int64(sold) {
		t.Errorf("%d units sold for %d SUCCESS answers", got, sold)
	}
}
