package transport

import (
	"fmt"
	"sync"

	"github.com/flashsale/flashsale/engine"
)

// group is a set of lanes that share a queue and one up/down state.
type group struct {
	b       *Batcher
	queue   chan *call
	durable bool // a wait follows each batch; one batch in flight per lane

	lanes    int
	mu       sync.Mutex
	up       int           // lanes with a connection
	failing  int           // lanes whose last dial failed
	refusing chan struct{} // non-nil while refuse runs: no lane is up, every lane's last dial failed
	dialErr  error         // the last dial failure
}

func (b *Batcher) newGroup(lanes int, durable bool) *group {
	g := &group{b: b, queue: make(chan *call, b.cfg.Queue), durable: durable, lanes: lanes}
	for range lanes {
		l := &lane{g: g}
		b.wg.Go(l.run)
	}
	return g
}

// drain fails every call still queued (after Close).
func (g *group) drain() {
	for {
		select {
		case c := <-g.queue:
			if c.state.CompareAndSwap(callQueued, callSent) {
				c.finish(nil, fmt.Errorf("%w: batcher closed", engine.ErrUnavailable))
			}
		default:
			return
		}
	}
}

// connected notes that lane l has a connection: Redis is up, nothing is
// refused.
func (g *group) connected(l *lane) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.up++
	if l.failing {
		l.failing = false
		g.failing--
	}
	if g.refusing != nil {
		close(g.refusing)
		g.refusing = nil
	}
}

// disconnected notes that a lane lost its connection. It refuses nothing
// yet: the lane dials again at once, and only a failed dial says Redis is
// down.
func (g *group) disconnected() {
	g.mu.Lock()
	g.up--
	g.mu.Unlock()
}

// dialFailed notes that lane l could not connect. When no lane of the
// group is up and every lane's last dial failed, Redis is down: callers
// hear so at once rather than waiting out dials and backoffs. While one
// lane is up, or still dialling, it serves them and nothing is refused.
func (g *group) dialFailed(l *lane, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dialErr = err
	if !l.failing {
		l.failing = true
		g.failing++
	}
	if g.up == 0 && g.failing == g.lanes && g.refusing == nil {
		g.refusing = make(chan struct{})
		go g.refuse(g.refusing)
	}
}

// out returns why the group serves nothing, while no lane is up and
// every lane's last dial failed; nil while it serves.
func (g *group) out() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.refusing == nil {
		return nil
	}
	return fmt.Errorf("%w: every batch connection is out: %w", engine.ErrUnavailable, g.dialErr)
}

// refuse fails every call that arrives until done closes or the batcher
// stops. The calls did not run.
func (g *group) refuse(done <-chan struct{}) {
	for {
		select {
		case <-done:
			return
		case <-g.b.stop:
			return
		case c := <-g.queue:
			if c.state.CompareAndSwap(callQueued, callSent) {
				c.finish(nil, errUnsent)
			}
		}
	}
}
