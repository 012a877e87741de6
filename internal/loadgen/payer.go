package loadgen

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/client"
	"github.com/flashsale/flashsale/wire"
)

// PayConfig says what the winners of a sale with a hold do with their
// reservations: a share pays (confirms) after a delay, a share cancels
// after the same delay, and the rest abandon theirs (neither), so it
// expires.
type PayConfig struct {
	// Addrs are the servers; the payer's connection i goes to Addrs[i %
	// len(Addrs)].
	Addrs      []string
	Conns      int // connections of the payer's own (1 when 0)
	Product    string
	UserPrefix string
	// Pay and Cancel are the shares (0 to 1, Pay+Cancel at most 1) of the
	// reservations that are confirmed and cancelled.
	Pay, Cancel float64
	// Delay after the RESERVED answer a confirm or cancel is sent, plus
	// a random part up to Jitter.
	Delay, Jitter time.Duration
	Options       client.Options
	// Sign, when set, proves the customer (as Config.Sign does a purchase's).
	Sign func(req *wire.PurchaseRequest, user int64)
}

// Fate is what a customer does with a reservation.
type Fate uint8

// The fates of a reservation.
const (
	Abandon Fate = iota // neither confirm nor cancel: it expires
	Pay                 // confirm after the delay
	Cancel              // cancel after the delay
)

// Settled is one reservation, what its customer did with it, and the answer.
type Settled struct {
	Reservation
	Fate Fate
	// Status answered the confirm or cancel: StatusError (the zero
	// Status) for Abandon, and when it got no good answer (Err says why).
	Status wire.Status
	Err    string
}

// Payer settles the reservations a load run makes (Config.OnReserved =
// Payer.Reserved), each on a timer, over connections of its own.
type Payer struct {
	cfg   PayConfig
	conns []payConn
	next  atomic.Uint64 // round robin over conns
	ctx   context.Context
	wg    sync.WaitGroup

	mu      sync.Mutex
	settled []*Settled
	timers  []*time.Timer
}

// payConn is one of the payer's connections, dialled again after a failure.
type payConn struct {
	mu   sync.Mutex
	addr string
	c    *client.Conn
}

// NewPayer prepares to settle reservations per cfg; the calls it makes end
// with ctx.
func NewPayer(ctx context.Context, cfg PayConfig) *Payer {
	p := &Payer{cfg: cfg, ctx: ctx, conns: make([]payConn, max(cfg.Conns, 1))}
	for i := range p.conns {
		p.conns[i].addr = cfg.Addrs[i%len(cfg.Addrs)]
	}
	return p
}

// weyl is the golden ratio's fraction: reservation i's draw is frac(i·weyl),
// spread evenly over [0, 1), so the shares come out exact on few
// reservations, whatever the order they arrive in.
const weyl = 0.6180339887498949

// fate is what the customer of the i-th reservation does.
func (p *Payer) fate(i int) Fate {
	_, u := math.Modf(float64(i) * weyl)
	switch {
	case u < p.cfg.Pay:
		return Pay
	case u < p.cfg.Pay+p.cfg.Cancel:
		return Cancel
	}
	return Abandon
}

// Reserved takes a reservation (Config.OnReserved): it decides its fate
// and, for a payer or canceller, sets its timer. It does not block.
func (p *Payer) Reserved(r Reservation) {
	s := &Settled{Reservation: r}
	p.mu.Lock()
	defer p.mu.Unlock()
	s.Fate = p.fate(len(p.settled))
	p.settled = append(p.settled, s)
	if s.Fate == Abandon || p.ctx.Err() != nil {
		return
	}
	delay := p.cfg.Delay
	if p.cfg.Jitter > 0 {
		delay += rand.N(p.cfg.Jitter)
	}
	p.wg.Add(1)
	p.timers = append(p.timers, time.AfterFunc(delay-time.Since(r.At), func() {
		defer p.wg.Done()
		p.settle(s)
	}))
}

// settle sends the confirm or cancel of s and keeps its answer.
func (p *Payer) settle(s *Settled) {
	req := wire.OrderRequest{ProductID: p.cfg.Product, UserID: p.cfg.UserPrefix + "_" + strconv.FormatInt(s.User, 10), OrderID: s.OrderID}
	if p.cfg.Sign != nil {
		pr := wire.PurchaseRequest{ProductID: req.ProductID, UserID: req.UserID, Quantity: s.Quantity}
		p.cfg.Sign(&pr, s.User)
		req.Token, req.Expires, req.JWT = pr.Token, pr.Expires, pr.JWT
	}
	pc := &p.conns[p.next.Add(1)%uint64(len(p.conns))]
	c, err := pc.get(p.ctx, p.cfg.Options)
	var resp client.Response
	if err == nil {
		if s.Fate == Pay {
			resp, err = c.Confirm(p.ctx, req)
		} else {
			resp, err = c.Cancel(p.ctx, req)
		}
	}
	st, known := wire.ParseStatus(resp.Status)
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil:
		s.Err = ErrText(err)
	case !known || st == wire.StatusError:
		s.Err = strings.TrimSpace(resp.Status + " " + resp.Code + ": " + resp.Error)
	default:
		s.Status = st
	}
}

// get is the connection, dialled if it has none or it failed.
func (pc *payConn) get(ctx context.Context, opts client.Options) (*client.Conn, error) {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.c != nil && pc.c.Err() == nil {
		return pc.c, nil
	}
	c, err := client.Dial(ctx, pc.addr, opts)
	if err != nil {
		return nil, err
	}
	pc.c = c
	return c, nil
}

// Wait waits for every confirm and cancel set so far to be answered, then
// closes the connections and returns the reservations in the order they
// came. When ctx ends first, the timers not yet fired are stopped: their
// reservations stay unsettled, with Err saying so.
func (p *Payer) Wait(ctx context.Context) []Settled {
	done := make(chan struct{})
	go func() {
		p.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		p.mu.Lock()
		for _, t := range p.timers {
			if t.Stop() {
				p.wg.Done()
			}
		}
		p.mu.Unlock()
		<-done
	}
	for i := range p.conns {
		if c := p.conns[i].c; c != nil {
			c.Close()
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Settled, len(p.settled))
	for i, s := range p.settled {
		out[i] = *s
		if s.Fate != Abandon && s.Status == 0 && s.Err == "" {
			out[i].Err = "not sent: the run was stopped"
		}
	}
	return out
}
