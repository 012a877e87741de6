package commands

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
)

// TestServeHTTP: 'serve' answers HTTP on --listen, beside TLV, and on
// --http-listen.
func TestServeHTTP(t *testing.T) {
	raddr := redistest.Addr(t)
	p := initProduct(t, raddr, 10)
	httpAddr := freeAddr(t)
	addr := startServe(t, raddr, "--http-listen", httpAddr, "--first-frame-timeout", "5s")
	c := &http.Client{Timeout: 10 * time.Second}
	for _, url := range []string{"http://" + addr + "/", "http://" + httpAddr + "/v1/purchase"} {
		res, err := c.Post(url, "text/plain", strings.NewReader(`{"product_id":"`+p+`","user_id":"user"}`))
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 200 || !strings.HasPrefix(string(body), `{"status":"SUCCESS"`) {
			t.Errorf("POST %s = %d %s, want 200 SUCCESS", url, res.StatusCode, body)
		}
	}
	res, err := c.Get("http://" + httpAddr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Errorf("GET /readyz = %d, want 200", res.StatusCode)
	}
}
