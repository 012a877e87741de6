package loadgen

import (
	"context"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/wire"
)

// RoomConfig is a crowd of buyers in front of a product's waiting room:
// each joins once, polls its place, and buys once when admitted.
type RoomConfig struct {
	Addrs      []string
	Product    string
	UserPrefix string // buyer i is customer UserPrefix_i
	Buyers     int
	// Aggressive buyers are the first to arrive: buyers 0 … Aggressive−1.
	Aggressive int
	// Early buyers (the first Early to arrive) join before OpensAt, spread
	// over the time until it; the others after it, over LateWindow.
	Early      int
	OpensAt    time.Time // bench's clock
	LateWindow time.Duration
	// Poll is how often a normal buyer polls; they share Conns connections.
	// An aggressive buyer polls Factor times as often over Factor
	// connections of its own.
	Poll     time.Duration
	Conns    int
	Factor   int
	Quantity int64
	Options  client.Options
	// Sign, when set, proves buyer user's id (a join carries the proof its
	// purchase would).
	Sign func(req *wire.PurchaseRequest, user int64)
	// ProbeEvery, when set, sends a purchase without a valid admission
	// that often while the run lasts: by turns with none, and with the
	// last admission a buyer got (another customer's). Each must be
	// refused NOT_ADMITTED.
	ProbeEvery time.Duration
	// Deadline ends the run: buyers still waiting then stop.
	Deadline time.Time
}

// Buyer is what became of one buyer of a room run.
type Buyer struct {
	User       int64
	Aggressive bool
	// Early: the join's answer came before the opening (it had no
	// position yet), so the buyer's place was drawn at the opening.
	Early  bool
	Joined time.Time // the join's answer
	// Turn is when the room said the buyer's place comes up (a WAITING
	// answer's time plus its eta, after the opening), or when the first
	// ADMITTED answer came if no such answer came before.
	Turn     time.Time
	Admitted time.Time // the first ADMITTED answer
	Polls    int
	Bought   wire.Status // the purchase's answer (0: no purchase)
	Code     string      // the purchase's error code
	Units    int64
	OrderID  string
	BoughtAt time.Time // the purchase's SUCCESS answer
	BuyLat   time.Duration
	SoldOut  time.Time // the SOLD_OUT answer (join, poll or purchase)
	Err      string    // a request that failed (the buyer stopped)
}

// RoomResult is a room run's buyers, in the order they were due to arrive.
type RoomResult struct {
	Buyers      []Buyer
	Probes      []ProbeAnswer
	Start       time.Time
	Duration    time.Duration
	Interrupted bool
}

// roomRun is one room run's shared state.
type roomRun struct {
	cfg    RoomConfig
	shared []*payConn // the normal buyers'
	next   atomic.Uint64
	// admission is the last admission a buyer got, for the probes.
	admission atomic.Pointer[string]
}

// RunRoom runs cfg's crowd until every buyer bought, was told SOLD_OUT or
// failed, or the deadline or ctx ends it.
func RunRoom(ctx context.Context, cfg RoomConfig) *RoomResult {
	cfg.Factor, cfg.Conns = max(cfg.Factor, 1), max(cfg.Conns, 1)
	ctx, cancel := context.WithDeadline(ctx, cfg.Deadline)
	defer cancel()
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	r := &roomRun{cfg: cfg, shared: conns(cfg.Addrs, cfg.Conns, 0)}
	res := &RoomResult{Buyers: make([]Buyer, cfg.Buyers), Start: time.Now()}
	var wg sync.WaitGroup
	probed := make(chan []ProbeAnswer, 1)
	probeCtx, stopProbes := context.WithCancel(ctx)
	go func() { probed <- r.probe(probeCtx) }()
	for i := range res.Buyers {
		b := &res.Buyers[i]
		b.User, b.Aggressive = int64(i), i < cfg.Aggressive
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.buyer(ctx, b, r.arrival(i, res.Start))
		}()
	}
	wg.Wait()
	stopProbes()
	res.Probes = <-probed
	res.Duration = time.Since(res.Start)
	res.Interrupted = ctx.Err() != nil && time.Now().Before(cfg.Deadline)
	closeConns(r.shared)
	return res
}

// conns are n connections to addrs, the first to addrs[first%len].
func conns(addrs []string, n, first int) []*payConn {
	cs := make([]*payConn, n)
	for i := range cs {
		cs[i] = &payConn{addr: addrs[(first+i)%len(addrs)]}
	}
	return cs
}

func closeConns(cs []*payConn) {
	for _, pc := range cs {
		if pc.c != nil {
			pc.c.Close()
		}
	}
}

// arrival is when buyer i joins: the early ones evenly before the opening
// (ending 50 ms before it), the others evenly over the late window after.
func (r *roomRun) arrival(i int, start time.Time) time.Time {
	cfg := r.cfg
	if i < cfg.Early {
		span := max(cfg.OpensAt.Sub(start)-50*time.Millisecond, 0)
		return start.Add(span * time.Duration(i) / time.Duration(cfg.Early))
	}
	late := cfg.Buyers - cfg.Early
	return cfg.OpensAt.Add(cfg.LateWindow * time.Duration(i-cfg.Early) / time.Duration(late))
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	tm := time.NewTimer(time.Until(t))
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// picker hands out a buyer's connections, round robin.
type picker struct {
	cs   []*payConn
	next int
}

func (p *picker) conn(ctx context.Context, opts client.Options) (*client.Conn, error) {
	pc := p.cs[p.next%len(p.cs)]
	p.next++
	return pc.get(ctx, opts)
}

// buyer is one buyer's life: join at arrive, poll, buy once admitted.
func (r *roomRun) buyer(ctx context.Context, b *Buyer, arrive time.Time) {
	cfg := r.cfg
	every := cfg.Poll
	p := &picker{cs: r.shared}
	if b.Aggressive {
		every = max(every/time.Duration(cfg.Factor), time.Millisecond)
		p.cs = conns(cfg.Addrs, cfg.Factor, int(b.User))
		defer closeConns(p.cs)
	} else {
		p.next = int(r.next.Add(1) - 1)
	}
	if !sleepUntil(ctx, arrive) {
		return
	}
	user := cfg.UserPrefix + "_" + strconv.FormatInt(b.User, 10)
	req := wire.PurchaseRequest{ProductID: cfg.Product, UserID: user, Quantity: cfg.Quantity}
	if cfg.Sign != nil {
		cfg.Sign(&req, b.User)
	}
	resp, ok := r.call(ctx, b, p, func(c *client.Conn) (client.Response, error) {
		return c.Join(ctx, wire.JoinRequest{ProductID: cfg.Product, UserID: user, Token: req.Token, Expires: req.Expires, JWT: req.JWT})
	})
	if !ok || r.ended(b, resp) {
		return
	}
	b.Joined = time.Now()
	b.Early = resp.Has&wire.FieldPosition == 0
	ticket := resp.Ticket
	r.noteTurn(b, resp, b.Joined)
	// A random phase, so that the crowd's polls spread over the interval.
	next := b.Joined.Add(rand.N(every))
	for {
		if !sleepUntil(ctx, next) {
			return
		}
		next = next.Add(every)
		resp, ok := r.call(ctx, b, p, func(c *client.Conn) (client.Response, error) { return c.QueueStatus(ctx, cfg.Product, ticket) })
		if !ok || r.ended(b, resp) {
			return
		}
		b.Polls++
		now := time.Now()
		if resp.Status != wire.StatusAdmitted.String() {
			r.noteTurn(b, resp, now)
			continue
		}
		b.Admitted = now
		if b.Turn.IsZero() {
			b.Turn = now
		}
		req.Admission = resp.Admission
		r.admission.Store(&resp.Admission)
		r.buy(ctx, b, p, req)
		return
	}
}

// noteTurn keeps the turn a WAITING answer at now announces, once the
// room is open (a position is known).
func (r *roomRun) noteTurn(b *Buyer, resp client.Response, now time.Time) {
	if resp.Status == wire.StatusWaiting.String() && resp.Has&wire.FieldPosition != 0 && resp.Position >= 0 {
		b.Turn = now.Add(time.Duration(resp.ETAMS) * time.Millisecond)
	}
}

// ended says whether resp ends the buyer: SOLD_OUT, or an answer that is
// neither WAITING nor ADMITTED (an error).
func (r *roomRun) ended(b *Buyer, resp client.Response) bool {
	switch resp.Status {
	case wire.StatusWaiting.String(), wire.StatusAdmitted.String():
		return false
	case wire.StatusSoldOut.String():
		b.SoldOut = time.Now()
	default:
		b.Err = answerText(resp)
	}
	return true
}

// answerText is an unexpected answer, for the error set.
func answerText(resp client.Response) string {
	if resp.Code != "" {
		return resp.Status + " " + resp.Code + ": " + resp.Error
	}
	return resp.Status + " " + resp.Error
}

// call sends one request of b's over its next connection; false (b.Err
// set) when it got no answer.
func (r *roomRun) call(ctx context.Context, b *Buyer, p *picker, do func(*client.Conn) (client.Response, error)) (client.Response, bool) {
	c, err := p.conn(ctx, r.cfg.Options)
	var resp client.Response
	if err == nil {
		resp, err = do(c)
	}
	if err != nil {
		if ctx.Err() == nil {
			b.Err = ErrText(err)
		}
		return resp, false
	}
	return resp, true
}

// buy sends b's one purchase, with its admission.
func (r *roomRun) buy(ctx context.Context, b *Buyer, p *picker, req wire.PurchaseRequest) {
	t0 := time.Now()
	resp, ok := r.call(ctx, b, p, func(c *client.Conn) (client.Response, error) { return c.Purchase(ctx, req) })
	if !ok {
		return
	}
	b.BuyLat = time.Since(t0)
	st, known := wire.ParseStatus(resp.Status)
	switch {
	case !known:
		b.Err = answerText(resp)
	case st == wire.StatusSoldOut:
		b.SoldOut = time.Now()
	case st == wire.StatusSuccess:
		b.Units, b.OrderID, b.BoughtAt = resp.Quantity, resp.OrderID, time.Now()
	}
	b.Bought, b.Code = st, resp.Code
}

// ProbeAnswer is the answer to one purchase sent without a valid
// admission.
type ProbeAnswer struct {
	Kind   string // "none" (no admission) or "other" (another customer's)
	Status string
	Code   string
	Err    string // no answer
}

// probe sends cfg's probes (none without ProbeEvery) until ctx ends, over
// a connection of its own, and returns their answers.
func (r *roomRun) probe(ctx context.Context) []ProbeAnswer {
	cfg := r.cfg
	if cfg.ProbeEvery <= 0 {
		return nil
	}
	pc := &payConn{addr: cfg.Addrs[0]}
	defer closeConns([]*payConn{pc})
	var out []ProbeAnswer
	for n := 0; sleepUntil(ctx, time.Now().Add(cfg.ProbeEvery)); n++ {
		user := int64(cfg.Buyers + n)
		req := wire.PurchaseRequest{ProductID: cfg.Product, UserID: cfg.UserPrefix + "_" + strconv.FormatInt(user, 10), Quantity: cfg.Quantity}
		if cfg.Sign != nil {
			cfg.Sign(&req, user)
		}
		a := ProbeAnswer{Kind: "none"}
		if adm := r.admission.Load(); adm != nil && n%2 == 1 {
			a.Kind, req.Admission = "other", *adm
		}
		c, err := pc.get(ctx, cfg.Options)
		var resp client.Response
		if err == nil {
			resp, err = c.Purchase(ctx, req)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return out
		case err != nil:
			a.Err = ErrText(err)
		}
		a.Status, a.Code = resp.Status, resp.Code
		out = append(out, a)
	}
	return out
}
