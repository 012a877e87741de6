package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/internal/defaults"
)

// Prefix is the path the dashboard answers under.
const Prefix = "/dashboard"

// Defaults of Config.
const (
	DefaultMaxClients   = 64
	DefaultMaxProducts  = 500
	DefaultTimeout      = 3 * time.Second
	DefaultInterval     = 250 * time.Millisecond
	DefaultHeartbeat    = 15 * time.Second
	DefaultClientBuffer = 32
	DefaultWriteTimeout = 10 * time.Second
)

// Config tunes the dashboard. Its zero value works.
type Config struct {
	// Logger receives subscription failures and refused clients; the zero
	// Logger discards them.
	Logger zerolog.Logger
	// MaxClients caps the event streams open at once; one more is refused
	// with 503 (default DefaultMaxClients).
	MaxClients int
	// MaxProducts caps the products the snapshot reads and the stream
	// tracks (default DefaultMaxProducts).
	MaxProducts int
	// Timeout bounds a snapshot and each status read of the stream
	// (default DefaultTimeout).
	Timeout time.Duration
	// Interval is how often sales are sent to browsers, added up per
	// product (default DefaultInterval).
	Interval time.Duration
	// Heartbeat is how often an idle stream gets a comment, so proxies
	// keep it open and a dead browser is noticed (default DefaultHeartbeat).
	Heartbeat time.Duration
	// ClientBuffer is how many messages a slow browser may fall behind
	// before it loses them and is told to resync (default
	// DefaultClientBuffer).
	ClientBuffer int
	// WriteTimeout bounds each write to a browser (default
	// DefaultWriteTimeout).
	WriteTimeout time.Duration
	// Waits, when set, gives the time customers waited in waiting rooms
	// (metrics.Metrics does), shown on the card of each product with a
	// room. Nil: the cards show no waits.
	Waits WaitSource
	// Done, when closed, ends every event stream, so that a server's
	// Shutdown is not held up by browsers that never hang up. Nil: streams
	// end only with their requests.
	Done <-chan struct{}
}

// WaitSource summarises the waits of this server's waiting-room
// admissions, all rooms together: how many, and their median and 99th
// percentile.
type WaitSource interface {
	RoomWaits() (admissions uint64, p50, p99 time.Duration)
}

// product is the page's view of s, with this server's waits when s has a
// waiting room.
func (c *Config) product(s engine.ProductStatus) Product {
	p := productOf(s)
	if c.Waits != nil && s.Room.Rate > 0 {
		n, p50, p99 := c.Waits.RoomWaits()
		p.Waited = &Waited{Admissions: n, P50Ms: p50.Milliseconds(), P99Ms: p99.Milliseconds()}
	}
	return p
}

func (c *Config) setDefaults() {
	defaults.Set(&c.MaxClients, DefaultMaxClients)
	defaults.Set(&c.MaxProducts, DefaultMaxProducts)
	defaults.Set(&c.Timeout, DefaultTimeout)
	defaults.Set(&c.Interval, DefaultInterval)
	defaults.Set(&c.Heartbeat, DefaultHeartbeat)
	defaults.Set(&c.ClientBuffer, DefaultClientBuffer)
	defaults.Set(&c.WriteTimeout, DefaultWriteTimeout)
}

//go:embed static
var staticFS embed.FS

// static holds the page's files at their names (index.html, app.js, …).
var static, _ = fs.Sub(staticFS, "static")

// snapshotWorkers bounds the status reads a snapshot runs at once.
const snapshotWorkers = 8

// snapshotMaxAge is how long one snapshot answers every request: a crowd
// of browsers opening the page costs one read of Redis a second at most,
// and the stream brings each up to date.
const snapshotMaxAge = time.Second

type dashboard struct {
	eng    *engine.Engine
	cfg    Config
	hub    *hub
	assets http.Handler
	// refusals counts the streams refused for MaxClients; refusedLog
	// logs them at most once a second.
	refusals   atomic.Int64
	refusedLog zerolog.Logger

	mu      sync.Mutex
	snap    Snapshot
	snapErr error
	snapAt  time.Time
	reading chan struct{} // closed when the read under way ends; nil when none
}

// New returns the dashboard of eng. The handler answers the paths under
// Prefix, and / with the page.
func New(eng *engine.Engine, cfg Config) http.Handler {
	cfg.setDefaults()
	return &dashboard{
		eng:        eng,
		cfg:        cfg,
		hub:        newHub(eng, cfg),
		assets:     http.FileServerFS(static),
		refusedLog: cfg.Logger.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Second}),
	}
}

func (d *dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "+
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'")
	path := strings.TrimPrefix(r.URL.Path, Prefix)
	switch path {
	case "", "/", "/index.html":
		d.serveAsset(w, r, "/")
	case "/api/products":
		d.snapshot(w, r)
	case "/events":
		d.events(w, r)
	default:
		if _, err := fs.Stat(static, strings.TrimPrefix(path, "/")); err != nil || path == "/" {
			http.NotFound(w, r)
			return
		}
		d.serveAsset(w, r, path)
	}
}

// serveAsset serves the embedded file at path ("/" is index.html). The
// files carry no modification time, so browsers revalidate them.
func (d *dashboard) serveAsset(w http.ResponseWriter, r *http.Request, path string) {
	w.Header().Set("Cache-Control", "no-cache")
	r2 := r.Clone(r.Context())
	r2.URL.Path = path
	d.assets.ServeHTTP(w, r2)
}

// Product is one product as the page shows it, in the snapshot and in the
// stream's product events: every figure of one is from one status reading
// (engine.ProductStatus), taken at At.
type Product struct {
	ID            string       `json:"id"`
	State         engine.State `json:"state"`
	Remaining     int64        `json:"remaining"`
	Initial       int64        `json:"initial"`
	Held          int64        `json:"held"`
	ActiveOrders  int64        `json:"active_orders"`  // orders not released
	Customers     int64        `json:"customers"`      // customers holding units
	StreamEntries int64        `json:"stream_entries"` // entries in the orders stream
	Limit         int64        `json:"limit"`
	Start         int64        `json:"start,omitempty"` // Unix ms, 0: none
	End           int64        `json:"end,omitempty"`   // Unix ms, 0: none
	At            int64        `json:"at"`              // Redis's clock at the reading, Unix ms
	// A product sold with a hold (engine.WithHold): how long a reservation
	// lasts, and the units reserved now, paid, and released on expiry or
	// cancelled. All absent for a product that never had a hold.
	HoldMs    int64 `json:"hold_ms,omitempty"`
	Reserved  int64 `json:"reserved,omitempty"`
	Paid      int64 `json:"paid,omitempty"`
	Expired   int64 `json:"expired,omitempty"`
	Cancelled int64 `json:"cancelled,omitempty"`
	// A product with a waiting room (engine.SetRoom): the places it
	// admits a second, and the customers who joined it, who are waiting,
	// and whom it admitted. All absent for a product without a room.
	RoomRate     int64 `json:"room_rate,omitempty"`
	RoomJoined   int64 `json:"room_joined,omitempty"`
	RoomWaiting  int64 `json:"room_waiting,omitempty"`
	RoomAdmitted int64 `json:"room_admitted,omitempty"`
	// Waited is this server's waits in waiting rooms (Config.Waits), on
	// the products with a room: not a figure of the reading.
	Waited *Waited `json:"waited,omitempty"`
	// Deprecated: Buyers is ActiveOrders (it counted orders, not
	// customers), and Orders is StreamEntries; kept for existing clients.
	Buyers int64 `json:"buyers"`
	Orders int64 `json:"orders"`
}

func productOf(s engine.ProductStatus) Product {
	return Product{
		ID: s.ID, State: s.State(), Remaining: s.Remaining, Initial: s.Initial, Held: s.Held,
		ActiveOrders: s.Buyers, Customers: s.Customers, StreamEntries: s.Orders,
		Limit: s.Limit, Start: unixMs(s.Start), End: unixMs(s.End), At: s.Now.UnixMilli(),
		Buyers: s.Buyers, Orders: s.Orders,
		HoldMs: s.Hold.Milliseconds(), Reserved: s.Reserved, Paid: s.Paid, Expired: s.Expired, Cancelled: s.Cancelled,
		RoomRate: s.Room.Rate, RoomJoined: s.Room.Joined, RoomWaiting: s.Room.Waiting(), RoomAdmitted: s.Room.Admitted,
	}
}

// Waited is the time waited in this server's waiting-room admissions.
type Waited struct {
	Admissions uint64 `json:"admissions"`
	P50Ms      int64  `json:"p50_ms"`
	P99Ms      int64  `json:"p99_ms"`
}

func unixMs(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// Snapshot is the answer of GET /dashboard/api/products.
type Snapshot struct {
	Now       int64     `json:"now"` // Redis's clock, Unix ms (0 with no product)
	Products  []Product `json:"products"`
	Truncated bool      `json:"truncated,omitempty"` // more than MaxProducts exist
}

// sharedSnapshot returns the last snapshot if it is recent, or waits for
// the read under way, or makes one; concurrent requests share one read.
func (d *dashboard) sharedSnapshot(ctx context.Context) (Snapshot, error) {
	d.mu.Lock()
	if !d.snapAt.IsZero() && time.Since(d.snapAt) < snapshotMaxAge {
		defer d.mu.Unlock()
		return d.snap, d.snapErr
	}
	if d.reading == nil {
		d.reading = make(chan struct{})
		// Not the request's context: the read serves every request
		// waiting for it, and Timeout bounds it.
		go d.refreshSnapshot(d.reading)
	}
	reading := d.reading
	d.mu.Unlock()
	select {
	case <-reading:
	case <-ctx.Done():
		return Snapshot{}, ctx.Err()
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snap, d.snapErr
}

// refreshSnapshot reads a snapshot for sharedSnapshot and closes done.
func (d *dashboard) refreshSnapshot(done chan struct{}) {
	snap, err := d.readSnapshot(context.Background())
	d.mu.Lock()
	defer d.mu.Unlock()
	d.snap, d.snapErr, d.snapAt, d.reading = snap, err, time.Now(), nil
	close(done)
}

// readSnapshot reads every product (at most MaxProducts of them, sorted by
// id) within Timeout.
func (d *dashboard) readSnapshot(ctx context.Context) (Snapshot, error) {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	ids, err := d.eng.Products(ctx)
	if err != nil {
		return Snapshot{}, err
	}
	snap := Snapshot{Products: []Product{}}
	if len(ids) > d.cfg.MaxProducts {
		ids, snap.Truncated = ids[:d.cfg.MaxProducts], true
	}
	statuses := make([]engine.ProductStatus, len(ids))
	errs := make([]error, len(ids))
	sem := make(chan struct{}, snapshotWorkers)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			statuses[i], errs[i] = d.eng.Status(ctx, id)
		})
	}
	wg.Wait()
	for i, s := range statuses {
		switch {
		case errors.Is(errs[i], engine.ErrUnknownProduct):
			// Deleted between the scan and its reading.
		case errs[i] != nil:
			return Snapshot{}, errs[i]
		default:
			snap.Products = append(snap.Products, d.cfg.product(s))
			snap.Now = max(snap.Now, s.Now.UnixMilli())
		}
	}
	return snap, nil
}

func (d *dashboard) snapshot(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	snap, err := d.sharedSnapshot(r.Context())
	if err != nil {
		d.cfg.Logger.Warn().Err(err).Msg("dashboard snapshot")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": publicError(err)})
		return
	}
	writeJSON(w, http.StatusOK, snap)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// publicError is what a browser is told about err: its kind, not the
// Redis internals (addresses, replies) that go to the log.
func publicError(err error) string {
	if errors.Is(err, engine.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return "redis unavailable"
	}
	return "internal error"
}
