package dashboard_test

import (
	"context"
	"fmt"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/internal/testkit/saletest"
	"github.com/flashsale/flashsale/server/dashboard"
	"github.com/flashsale/flashsale/wire"
)

// Environment of the browser test.
const (
	// envBrowser set to "required" makes a missing Chromium a failure,
	// not a skip (CI sets it).
	envBrowser = "FLASHSALE_TEST_BROWSER"
	// envArtifacts is the directory the screenshot goes to (default
	// $TMPDIR/flashsale-artifacts).
	envArtifacts = "FLASHSALE_ARTIFACTS"
	// envDemo is how long the test's sale runs (default 4s); a longer one
	// makes a fuller chart for docs/dashboard.png.
	envDemo = "FLASHSALE_DASHBOARD_DEMO"
)

// browserTimeout bounds the whole browser test.
const browserTimeout = 60 * time.Second

// chromium returns the path of a Chromium, skipping the test without one
// unless envBrowser requires it.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	const why = "no chromium on $PATH (Debian: apt-get install chromium)"
	if os.Getenv(envBrowser) == "required" {
		t.Fatalf("%s, and %s=required", why, envBrowser)
	}
	redistest.Skip(t, redistest.NeedBrowser, fmt.Sprintf("%s; set %s=required to make this a failure", why, envBrowser))
	return ""
}

// demoProduct is a product of the test's sale and how it sells.
type demoProduct struct {
	name  string
	units int64
	opts  []engine.InitOption
	// rate is the units per second bought at fraction f of the sale
	// (0..1); nil: nothing is bought.
	rate func(f float64) float64
}

// runSale buys each product at its rate for d, one unit per purchase,
// each by a new customer, and closes nearlyDone at 85% of d. It returns
// when every product has stopped selling.
func runSale(ctx context.Context, t *testing.T, eng *engine.Engine, ids []string, ps []demoProduct, d time.Duration, nearlyDone chan<- struct{}) {
	t.Helper()
	start := time.Now()
	var once sync.Once
	var buyers atomic.Int64
	var wg sync.WaitGroup
	for i, p := range ps {
		if p.rate == nil {
			continue
		}
		wg.Go(func() {
			tick := time.NewTicker(20 * time.Millisecond)
			defer tick.Stop()
			owed := 0.0
			for last := start; ctx.Err() == nil; {
				now := <-tick.C
				f := float64(now.Sub(start)) / float64(d)
				if f >= 0.85 {
					once.Do(func() { close(nearlyDone) })
				}
				if f >= 1 {
					return
				}
				owed += p.rate(f) * now.Sub(last).Seconds()
				last = now
				for ; owed >= 1; owed-- {
					r := eng.Purchase(ctx, engine.Request{ProductID: ids[i], UserID: fmt.Sprint("buyer-", buyers.Add(1))})
					switch r.Status {
					case wire.StatusSuccess:
					case wire.StatusSoldOut:
						return
					default:
						if ctx.Err() == nil { // not the test giving up
							t.Errorf("purchase of %s: %v %v", ids[i], r.Status, r.Err)
						}
						return
					}
				}
			}
		})
	}
	wg.Wait()
	once.Do(func() { close(nearlyDone) })
}

// The page, in a real headless Chromium, shows the stock falling while
// purchases run through the engine, and a product selling out.
func TestDashboardInBrowser(t *testing.T) {
	bin := chromium(t)
	d := 4 * time.Second
	if v := os.Getenv(envDemo); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d <= 0 || d > 45*time.Second {
			t.Fatalf("%s=%q: want a duration up to 45s", envDemo, v)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout+d)
	defer cancel()

	eng, addr := saletest.Engine(t)
	secs := d.Seconds()
	now := time.Now()
	products := []demoProduct{
		{name: "iphone-17-pro", units: int64(45 * secs), rate: func(f float64) float64 { return 25 + 120*f }},
		{name: "pixel-10", units: 5000, rate: func(f float64) float64 { return 35 + 25*math.Sin(7*f) }},
		{name: "airpods-pro-3", units: 3000, rate: func(f float64) float64 {
			if f < 0.3 {
				return 0
			}
			return 70
		}},
		{name: "galaxy-s26", units: 40, rate: func(float64) float64 { return 400 }}, // sells out at once
		{name: "switch-2", units: 800, opts: []engine.InitOption{engine.WithWindow(now.Add(2*time.Hour+17*time.Minute), time.Time{})}},
		{name: "ps5-pro", units: 300, opts: []engine.InitOption{engine.WithWindow(now.Add(-3*time.Hour), now.Add(-25*time.Minute))}},
	}
	ids := make([]string, len(products))
	for i, p := range products {
		ids[i] = p.name
		if os.Getenv("REDIS_ADDR") != "" { // someone's Redis: leave its products alone
			ids[i] += "-" + redistest.Product(t)
		}
		if err := eng.Delete(ctx, ids[i]); err != nil && !strings.Contains(err.Error(), engine.ErrUnknownProduct.Error()) {
			t.Fatal(err)
		}
		if err := eng.Init(ctx, ids[i], p.units, p.opts...); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { eng.Delete(context.Background(), ids[i]) })
	}
	srv := httptest.NewServer(dashboard.New(eng, dashboard.Config{}))
	defer srv.Close()
	bctx, pageErrors := startBrowser(t, ctx, bin)

	iphone := ids[0]
	remainingSel := fmt.Sprintf(`[data-product=%q] .remaining`, iphone)
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(remainingSel)),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live="open"]`)),
	); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	before := shownStock(t, bctx, remainingSel)
	if before != products[0].units {
		t.Fatalf("the page shows %d left of %s before the sale, want %d", before, iphone, products[0].units)
	}
	waitSubscribed(t, ctx, addr)

	nearlyDone := make(chan struct{})
	saleDone := make(chan struct{})
	go func() {
		defer close(saleDone)
		runSale(ctx, t, eng, ids, products, d, nearlyDone)
	}()
	defer func() { cancel(); <-saleDone }() // no purchase outlives the test

	// The stock shown changes while the sale runs.
	for {
		if n := shownStock(t, bctx, remainingSel); n < before {
			t.Logf("the page went from %d to %d units of %s left", before, n, iphone)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the page still shows %d units of %s left: %v", before, iphone, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}

	<-nearlyDone
	time.Sleep(300 * time.Millisecond) // let the page draw the last sales it got
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	writeArtifact(t, "dashboard.png", png)
	<-saleDone
	// The sale is paced to sell it out; on a machine too slow for that,
	// the rest goes now.
	for i := 0; ; i++ {
		r := eng.Purchase(ctx, engine.Request{ProductID: iphone, UserID: fmt.Sprint("late-buyer-", i)})
		if r.Status == wire.StatusSoldOut {
			break
		}
		if r.Status != wire.StatusSuccess {
			t.Fatalf("purchase of %s: %v %v", iphone, r.Status, r.Err)
		}
	}

	// Once sales stop, the page agrees with Redis on every product, and
	// shows the sold-out product as such.
	for i, id := range ids {
		st, err := eng.Status(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		state, remaining := string(st.State()), strconv.FormatInt(st.Remaining, 10)
		js := fmt.Sprintf(`(() => { const c = document.querySelector('[data-product=%q]');
			return c && c.dataset.state === %q && c.querySelector('.remaining').textContent.replaceAll(',', '') === %q; })()`,
			id, state, remaining)
		if _, err := chromedp.Run(bctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(15*time.Second))); err != nil {
			card, _ := chromedp.Run(bctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector('[data-product=%q]')?.innerText`, id)))
			t.Errorf("%s: the page never showed %s with %s left (%v); it shows %q", products[i].name, state, remaining, err, card)
		}
	}
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the page threw: %q", errs)
	}
}

// startBrowser starts a headless Chromium (bin) for the rest of the test
// and returns its context, and a function that returns the exceptions its
// pages threw so far.
func startBrowser(t *testing.T, ctx context.Context, bin string) (context.Context, func() []string) {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		// Without these, Chromium on a closed network keeps trying to
		// reach Google and misbehaves.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(cancelBrowser)

	exceptions := chromedp.Events(bctx, runtime.ExceptionThrown)
	var pageErrors []string
	var mu sync.Mutex
	go func() {
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			mu.Lock()
			pageErrors = append(pageErrors, ev.ExceptionDetails.Text+" "+exceptionDescription(ev))
			mu.Unlock()
		}
	}()
	return bctx, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(pageErrors)
	}
}

// shownStock reads the stock a card shows, in one evaluation in the page
// (a node looked up first could be moved, when cards are re-sorted,
// before its text is read).
func shownStock(t *testing.T, ctx context.Context, sel string) int64 {
	t.Helper()
	text, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, sel)))
	if err != nil {
		t.Fatalf("reading %s: %v", sel, err)
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(text, ",", ""), 10, 64)
	if err != nil {
		t.Fatalf("%s shows %q, not a number", sel, text)
	}
	return n
}

func exceptionDescription(ev runtime.EventExceptionThrown) string {
	if ex := ev.ExceptionDetails.Exception; ex != nil && ex.Description != "" {
		return ex.Description
	}
	return ""
}

// writeArtifact keeps b under envArtifacts, for CI to collect, and prints
// where.
func writeArtifact(t *testing.T, name string, b []byte) {
	t.Helper()
	dir := os.Getenv(envArtifacts)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "flashsale-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("dashboard screenshot: %s", path)
	fmt.Printf("dashboard screenshot: %s (%d bytes)\n", path, len(b))
}

// cardFigures is what a product's card shows, read in one evaluation; ok
// is false while the page has no card for it (a reload under way).
type cardFigures struct {
	OK        bool  `json:"ok"`
	Sold      int64 `json:"sold"`
	Orders    int64 `json:"orders"`
	Customers int64 `json:"customers"`
}

func readCard(t *testing.T, ctx context.Context, id string) cardFigures {
	t.Helper()
	js := fmt.Sprintf(`(() => { const c = document.querySelector('[data-product=%q]');
		const n = (sel) => Number(c.querySelector(sel).textContent.replaceAll(',', ''));
		return c ? { ok: true, sold: n('.sold'), orders: n('.orders'), customers: n('.customers') } : { ok: false }; })()`, id)
	f, err := chromedp.Run(ctx, chromedp.Evaluate[cardFigures](js))
	if err != nil {
		t.Fatalf("reading the card of %s: %v", id, err)
	}
	return f
}

// While a sale runs, and across reloads of the page (a snapshot read while
// sales stream in), a card's figures come from one reading of the
// product: every order is of two units, so the units sold are exactly
// twice the orders, and never more customers than orders.
func TestDashboardFiguresAgree(t *testing.T) {
	const (
		qty       = 2
		customers = 40
		buyers    = 4
		sale      = 4 * time.Second
	)
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout+sale)
	defer cancel()
	eng, addr := saletest.Engine(t)
	id := saletest.Product(t, eng, 1_000_000, engine.WithPerUserLimit(0))
	srv := httptest.NewServer(dashboard.New(eng, dashboard.Config{}))
	t.Cleanup(srv.Close) // after the browser, whose stream it would wait for
	bctx, pageErrors := startBrowser(t, ctx, bin)
	card := fmt.Sprintf(`[data-product=%q] .remaining`, id)
	open := func(first chromedp.Action[chromedp.Void]) error {
		return chromedp.Do(bctx, first,
			chromedp.WaitVisible(chromedp.CSS(card)),
			chromedp.WaitVisible(chromedp.CSS(`body[data-live="open"]`)))
	}
	if err := open(chromedp.Navigate(srv.URL + "/")); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	waitSubscribed(t, ctx, addr)

	saleCtx, stop := context.WithTimeout(ctx, sale)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for b := range buyers {
		wg.Go(func() {
			for i := 0; saleCtx.Err() == nil; i++ {
				r := eng.Purchase(ctx, engine.Request{ProductID: id, UserID: fmt.Sprint("c", (i*buyers+b)%customers), Quantity: qty})
				if r.Status != wire.StatusSuccess {
					t.Errorf("purchase: %v %v", r.Status, r.Err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	reloads := []time.Duration{sale / 4, sale / 2, 3 * sale / 4}
	started, readings, bad := time.Now(), 0, 0
	for saleCtx.Err() == nil {
		if len(reloads) > 0 && time.Since(started) >= reloads[0] {
			reloads = reloads[1:]
			if err := open(chromedp.Reload()); err != nil {
				t.Fatalf("reloading the page: %v", err)
			}
		}
		f := readCard(t, bctx, id)
		if f.OK {
			readings++
			if f.Sold != qty*f.Orders || f.Customers > f.Orders || f.Customers > customers {
				if bad++; bad <= 5 {
					t.Errorf("the card shows %d units sold, %d orders, %d customers: not one reading (%d units per order, %d customers at most)",
						f.Sold, f.Orders, f.Customers, qty, customers)
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	st, err := eng.Status(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	want := cardFigures{OK: true, Sold: st.Sold(), Orders: st.Buyers, Customers: st.Customers}
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		f := readCard(t, bctx, id)
		if f == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the sale the card shows %+v, want %+v", f, want)
		}
	}
	t.Logf("%d readings of the card during the sale, %d of them inconsistent; final %+v", readings, bad, want)
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the page threw: %q", errs)
	}
}

// holdFigures is what a card shows of its reservations, read in one
// evaluation: whether the part is shown, its figures, and how many pixels
// its chart of reserved and paid units has drawn.
type holdFigures struct {
	Shown    bool  `json:"shown"`
	Reserved int64 `json:"reserved"`
	Paid     int64 `json:"paid"`
	Released int64 `json:"released"`
	Drawn    bool  `json:"drawn"`
}

func readHold(t *testing.T, ctx context.Context, id string) holdFigures {
	t.Helper()
	js := fmt.Sprintf(`(() => { const c = document.querySelector('[data-product=%q]');
		if (!c) return {};
		const n = (sel) => Number(c.querySelector(sel).textContent.replaceAll(',', ''));
		const s = c.querySelector('.spark');
		const px = s.width && s.height ? s.getContext('2d').getImageData(0, 0, s.width, s.height).data : [];
		let drawn = false;
		for (let i = 3; i < px.length; i += 4) if (px[i]) { drawn = true; break; }
		return { shown: !c.querySelector('.hold').hidden, reserved: n('.reserved'), paid: n('.paid'), released: n('.released'), drawn }; })()`, id)
	f, err := chromedp.Run(ctx, chromedp.Evaluate[holdFigures](js))
	if err != nil {
		t.Fatalf("reading the reservations of %s: %v", id, err)
	}
	return f
}

// A product sold with a hold shows its reserved, paid and released units
// and draws them, from the snapshot and as they change; a product
// without a hold shows none of it.
func TestDashboardHeldProduct(t *testing.T) {
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	eng, addr := saletest.Engine(t)
	heldID := saletest.Product(t, eng, 20, engine.WithHold(time.Minute))
	plain := saletest.Product(t, eng, 20)
	var orders []string
	reserve := func(n int) {
		t.Helper()
		for range n {
			r := eng.Purchase(ctx, engine.Request{ProductID: heldID, UserID: fmt.Sprint("u", len(orders))})
			if r.Status != wire.StatusReserved {
				t.Fatalf("purchase: %v %v", r.Status, r.Err)
			}
			orders = append(orders, r.OrderID)
		}
	}
	settle := func(op func(context.Context, engine.OrderRequest) engine.Result, i int, want wire.Status) {
		t.Helper()
		if r := op(ctx, engine.OrderRequest{ProductID: heldID, UserID: fmt.Sprint("u", i), OrderID: orders[i]}); r.Status != want {
			t.Fatalf("order %d: %v %v, want %v", i, r.Status, r.Err, want)
		}
	}
	reserve(4)
	settle(eng.Confirm, 0, wire.StatusPaid)
	settle(eng.Cancel, 1, wire.StatusReleased)

	srv := httptest.NewServer(dashboard.New(eng, dashboard.Config{}))
	t.Cleanup(srv.Close)
	bctx, pageErrors := startBrowser(t, ctx, bin)
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-product=%q] .remaining`, plain))),
		chromedp.WaitVisible(chromedp.CSS(`body[data-live="open"]`)),
	); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	waitHold := func(what string, want holdFigures) {
		t.Helper()
		var f holdFigures
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if f = readHold(t, bctx, heldID); f == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the card shows %+v, want %+v", what, f, want)
			}
		}
	}
	waitHold("from the snapshot", holdFigures{Shown: true, Reserved: 2, Paid: 1, Released: 1, Drawn: true})
	if f := readHold(t, bctx, plain); f.Shown {
		t.Errorf("a product without a hold shows reservations: %+v", f)
	}
	waitSubscribed(t, ctx, addr)
	reserve(3)
	settle(eng.Confirm, 2, wire.StatusPaid)
	waitHold("after more reservations and a confirm", holdFigures{Shown: true, Reserved: 4, Paid: 2, Released: 1, Drawn: true})
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	writeArtifact(t, "dashboard-hold.png", png)
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the page threw: %q", errs)
	}
}

// roomFigures is what a card shows of its waiting room.
type roomFigures struct {
	Shown    bool   `json:"shown"`
	Waiting  int64  `json:"waiting"`
	Admitted int64  `json:"admitted"`
	Rate     string `json:"rate"`
	Waited   string `json:"waited"`
}

func readRoom(t *testing.T, ctx context.Context, id string) roomFigures {
	t.Helper()
	js := fmt.Sprintf(`(() => { const c = document.querySelector('[data-product=%q]');
		if (!c) return {};
		const n = (sel) => Number(c.querySelector(sel).textContent.replaceAll(',', ''));
		return { shown: !c.querySelector('.room').hidden, waiting: n('.room-waiting'), admitted: n('.room-admitted'),
			rate: c.querySelector('.room-rate').textContent, waited: c.querySelector('.room-waited').textContent }; })()`, id)
	f, err := chromedp.Run(ctx, chromedp.Evaluate[roomFigures](js))
	if err != nil {
		t.Fatalf("reading the room of %s: %v", id, err)
	}
	return f
}

// waits stands in for the metrics' summary of the waits.
type waits struct{}

func (waits) RoomWaits() (uint64, time.Duration, time.Duration) {
	return 1, 1500 * time.Millisecond, 12 * time.Second
}

// A product with a waiting room shows its line, its admitted customers,
// its admit rate and the server's waits, and follows joins and
// admissions, which publish no event; a product without one shows none
// of it.
func TestDashboardRoomProduct(t *testing.T) {
	bin := chromium(t)
	ctx, cancel := context.WithTimeout(context.Background(), browserTimeout)
	defer cancel()
	eng, _ := saletest.Engine(t)
	roomID := saletest.Product(t, eng, 20)
	plain := saletest.Product(t, eng, 20)
	if _, err := eng.SetRoom(ctx, roomID, engine.Room{Rate: 1}); err != nil {
		t.Fatal(err)
	}
	var tickets []string
	join := func(n int) {
		t.Helper()
		for range n {
			a := eng.Join(ctx, engine.JoinRequest{ProductID: roomID, UserID: fmt.Sprint("u", len(tickets))})
			if a.Status != wire.StatusWaiting {
				t.Fatalf("join: %v %v", a.Status, a.Err)
			}
			tickets = append(tickets, a.Ticket)
		}
	}
	join(3)
	srv := httptest.NewServer(dashboard.New(eng, dashboard.Config{Waits: waits{}}))
	t.Cleanup(srv.Close)
	bctx, pageErrors := startBrowser(t, ctx, bin)
	if err := chromedp.Do(bctx,
		chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(srv.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(fmt.Sprintf(`[data-product=%q] .remaining`, plain))),
	); err != nil {
		t.Fatalf("opening the page: %v", err)
	}
	waitRoom := func(what string, ok func(roomFigures) bool) {
		t.Helper()
		var f roomFigures
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if f = readRoom(t, bctx, roomID); ok(f) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: the card shows %+v", what, f)
			}
		}
	}
	waitRoom("from the snapshot", func(f roomFigures) bool {
		return f.Shown && f.Waiting == 3 && f.Admitted == 0 && f.Rate != "" && f.Waited == "1.5s / 12s"
	})
	if f := readRoom(t, bctx, plain); f.Shown {
		t.Errorf("a product without a room shows one: %+v", f)
	}
	// u0 is admitted (within a second or two at rate 1); two more join.
	// Nothing is published: the page follows the room by its snapshots.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		a := eng.Poll(ctx, roomID, tickets[0])
		if a.Status == wire.StatusAdmitted {
			break
		}
		if a.Status != wire.StatusWaiting || time.Now().After(deadline) {
			t.Fatalf("poll u0: %v %v, want WAITING then ADMITTED", a.Status, a.Err)
		}
	}
	join(2)
	waitRoom("after an admission and two joins", func(f roomFigures) bool {
		return f.Shown && f.Waiting == 4 && f.Admitted == 1
	})
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	writeArtifact(t, "dashboard-room.png", png)
	if errs := pageErrors(); len(errs) > 0 {
		t.Errorf("the page threw: %q", errs)
	}
}
