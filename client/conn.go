package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// Request is an ATTEMPT_PURCHASE: ProductID and UserID are required;
// Quantity 0 means 1; RequestID makes it retryable; Token and Expires prove
// the user id to a server with customer tokens.
type Request = wire.PurchaseRequest

// Response is an answer: Status is SUCCESS, SOLD_OUT, OK, PONG, ERROR, …
// (see docs/protocol.md); an ERROR carries Code and Error. A Response
// is an answer the server gave: failures to get one are errors instead.
type Response = wire.Response

// Conn is a pipelined connection to a flashsale server, safe for
// concurrent use: calls from many goroutines share it, each waits for its
// own answer.
type Conn struct {
	s    *Stream
	opts Options
	done chan struct{} // closed when the connection is dead

	mu       sync.Mutex // orders writes with the waiters' queue
	wbuf     []byte
	waiters  []*call // in request order; the reader takes from the front
	err      error   // why the connection is dead
	lastSent time.Time
}

// call is one request waiting for its answer.
type call struct {
	t        wire.Type
	deadline time.Time
	resp     Response
	err      error
	done     chan struct{}
}

// Dial connects to the server at addr (host:port). Zero Options work.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	s, err := DialStream(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	c := &Conn{s: s, opts: opts, done: make(chan struct{}), lastSent: time.Now()}
	go c.read()
	if ka := opts.keepAlive(); ka > 0 {
		go c.keepAlive(ka)
	}
	return c, nil
}

// Addr is the server's address.
func (c *Conn) Addr() string { return c.s.Addr() }

// Purchase attempts req and returns the server's answer.
func (c *Conn) Purchase(ctx context.Context, req Request) (Response, error) {
	return c.roundTrip(ctx, wire.TypePurchase, func(b []byte) []byte { return wire.AppendPurchase(b, req) })
}

// OrderRequest names a reservation (a purchase answered RESERVED) by its
// product, customer and order id, with the customer's proof as a purchase
// carries it.
type OrderRequest = wire.OrderRequest

// Confirm marks the reservation paid: PAID (also when retried), EXPIRED
// after its expiry, RELEASED once cancelled.
func (c *Conn) Confirm(ctx context.Context, req OrderRequest) (Response, error) {
	return c.roundTrip(ctx, wire.TypeConfirm, func(b []byte) []byte { return wire.AppendOrder(b, req) })
}

// Cancel releases the reservation, its units back on sale at once:
// RELEASED (also when retried, or after its expiry), ALREADY_PAID once
// paid.
func (c *Conn) Cancel(ctx context.Context, req OrderRequest) (Response, error) {
	return c.roundTrip(ctx, wire.TypeCancel, func(b []byte) []byte { return wire.AppendOrder(b, req) })
}

// JoinRequest is a customer joining a product's waiting room.
type JoinRequest = wire.JoinRequest

// Join puts the customer in the product's waiting room: WAITING with the
// Ticket to poll with (the same one if they joined before), or SOLD_OUT.
func (c *Conn) Join(ctx context.Context, req JoinRequest) (Response, error) {
	return c.roundTrip(ctx, wire.TypeJoin, func(b []byte) []byte { return wire.AppendJoin(b, req) })
}

// QueueStatus asks where the holder of ticket stands in product's waiting
// room: WAITING (Position, ETAMS), ADMITTED (the Admission to buy with,
// in Request.Admission) or SOLD_OUT.
func (c *Conn) QueueStatus(ctx context.Context, product, ticket string) (Response, error) {
	return c.roundTrip(ctx, wire.TypeStatus, func(b []byte) []byte {
		return wire.AppendStatus(b, wire.StatusRequest{ProductID: product, Ticket: ticket})
	})
}

// QueryStock asks for product id's state and stock (status OK).
func (c *Conn) QueryStock(ctx context.Context, id string) (Response, error) {
	return c.roundTrip(ctx, wire.TypeQuery, func(b []byte) []byte {
		return wire.AppendQuery(b, wire.QueryRequest{ProductID: id})
	})
}

// Ping asks whether the server is up; the answer's Redis field says
// whether its Redis answers ("up" or "down").
func (c *Conn) Ping(ctx context.Context) (Response, error) {
	return c.roundTrip(ctx, wire.TypePing, func(b []byte) []byte { return b })
}

// Close closes the connection; calls waiting for an answer fail with
// ErrClosed.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Err is why the connection is dead, nil while it is usable.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *Conn) roundTrip(ctx context.Context, t wire.Type, payload func([]byte) []byte) (Response, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(c.opts.timeout())
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	cl := &call{t: t, deadline: deadline, done: make(chan struct{})}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return Response{}, c.err
	}
	c.wbuf = payload(wire.AppendHeader(c.wbuf[:0], t, 0))
	wire.AppendHeader(c.wbuf[:0], t, len(c.wbuf)-wire.HeaderSize)
	c.waiters = append(c.waiters, cl)
	if len(c.waiters) == 1 {
		// The reader waits for this answer now: bound the wait.
		c.s.SetReadDeadline(c.readDeadline(cl))
	}
	c.s.SetWriteDeadline(deadline)
	err := c.s.Write(c.wbuf)
	c.lastSent = time.Now()
	c.mu.Unlock()
	if err != nil {
		// A partial write leaves the stream unusable for everyone.
		c.fail(err)
	}
	select {
	case <-cl.done:
		return cl.resp, cl.err
	case <-ctx.Done():
		// The answer may still come: the reader takes it off the queue
		// and drops it, so later answers stay matched.
		return Response{}, ctx.Err()
	}
}

// readDeadline is how long the reader waits for cl's answer: its deadline,
// and a timeout more for a caller that gave up, so that a server that has
// stopped answering fails the connection instead of hanging it.
func (c *Conn) readDeadline(cl *call) time.Time {
	return cl.deadline.Add(c.opts.timeout())
}

// fail kills the connection with err (wrapped with ErrClosed) and fails
// every waiting call with it.
func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	if !errors.Is(err, ErrClosed) {
		err = fmt.Errorf("%w: %s: %w", ErrClosed, c.s.Addr(), err)
	}
	c.err = err
	waiters := c.waiters
	c.waiters = nil
	c.mu.Unlock()
	c.s.Close()
	close(c.done)
	for _, cl := range waiters {
		cl.err = err
		close(cl.done)
	}
}

// read hands each answer to the oldest waiting call.
func (c *Conn) read() {
	for {
		f, err := c.s.Next()
		if err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		if len(c.waiters) == 0 {
			c.mu.Unlock()
			c.fail(fmt.Errorf("answer of type %s with no request waiting", f.Type))
			return
		}
		cl := c.waiters[0]
		c.waiters[0] = nil
		c.waiters = c.waiters[1:]
		if len(c.waiters) > 0 {
			c.s.SetReadDeadline(c.readDeadline(c.waiters[0]))
		} else {
			// Idle: the keepalive pings bound the wait instead.
			c.s.SetReadDeadline(time.Time{})
		}
		c.mu.Unlock()
		// A server at --max-conns answers BUSY in a frame of type 0x80.
		if f.Type != cl.t.Response() && f.Type != wire.ResponseBit {
			c.fail(fmt.Errorf("answer of type %s to a %s", f.Type, cl.t))
			return
		}
		if err := wire.DecodeResponse(f.Payload, &cl.resp); err != nil {
			cl.err = fmt.Errorf("%s: bad answer %q: %w", cl.t, f.Payload, err)
		}
		close(cl.done)
	}
}

// keepAlive pings the server when nothing was sent for half of every, so
// that the connection is never idle for every and the server's idle
// timeout does not drop it.
func (c *Conn) keepAlive(every time.Duration) {
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		c.mu.Lock()
		idle := len(c.waiters) == 0 && time.Since(c.lastSent) >= every/2
		c.mu.Unlock()
		if !idle {
			continue
		}
		// An answer that does not come fails the connection (the reader's
		// deadline); nothing to do with it here.
		c.Ping(context.Background())
	}
}
