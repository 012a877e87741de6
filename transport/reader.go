package transport

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

// read matches replies to calls, batch by batch, on p's connection. On a
// broken connection, or a reply not in by its call's deadline, it fails
// what is in flight (sends it again on the pool when Redis refused the
// connection: it ran none of it), closes p.broken and the connection; the
// writer then stops and the lane dials again. When the node refused a call as a
// replica (with sentinels) it closes p.stale: the writer sends no more.
func (l *lane) read(conn redis.Conn, p *pipe) {
	r := reader{lane: l, conn: conn}
	var lost error
	stale := false
	for bt := range p.inflight {
		if lost == nil {
			lost = r.batch(bt)
			if lost != nil {
				l.g.b.connLost(lost)
				close(p.broken)
				conn.Close()
			}
		} else if errors.Is(lost, ErrMaxClients) {
			// Redis refused the connection and closed it: nothing sent
			// on it after the refusal ran (a call can be sent in the
			// moment before the reader sees the refusal), so these go
			// again on the pool, as the refused call did.
			for _, c := range bt.calls {
				go l.g.b.retry(c)
			}
		} else {
			bt.fail(lost)
		}
		if r.asReplica && !stale && l.g.b.pool.sentinel != nil {
			stale = true
			close(p.stale)
		}
		l.inflight.Add(-1)
		p.free <- struct{}{}
	}
}

// reader holds the buffers of a lane's reader.
type reader struct {
	lane    *lane
	conn    redis.Conn
	replies []any
	errs    []error
	by      []int64 // by[i]: the earliest deadline of calls i and after
	// asReplica: a call was refused because the node is no primary.
	asReplica bool
}

// receive reads one reply, waiting until by (Unix ns) at most. A
// network failure or a reply not in by then is returned as lost.
func (r *reader) receive(by int64) (v any, err error, lost error) {
	d := time.Duration(by - time.Now().UnixNano())
	if d <= 0 {
		return nil, nil, errReplyLate
	}
	v, err = redis.ReceiveWithTimeout(r.conn, d)
	if err != nil && !isReply(err) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil, nil, errReplyLate
		}
		return nil, nil, err
	}
	r.lane.lastReply.Store(time.Now().UnixNano())
	return v, err, nil
}

// batch reads bt's replies and finishes its calls; it returns why the
// connection is lost, if it is.
func (r *reader) batch(bt batch) error {
	b := r.lane.g.b
	r.replies, r.errs = r.replies[:0], r.errs[:0]
	r.deadlines(bt)
	lost := r.replyAll(bt)
	var waitErr error
	if lost == nil && bt.wait {
		waitErr, lost = r.wait(bt)
	}
	if lost == nil && b.cfg.Observer != nil {
		b.observe(bt)
	}
	var lostErr error
	if lost != nil {
		lostErr = fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, lost)
	}
	first := 0
	for i, k := range bt.sends {
		calls := bt.calls[first : first+k]
		first += k
		if i >= len(r.replies) {
			failAll(calls, lostErr)
			continue
		}
		if b.answer(calls, r.replies[i], r.errs[i], waitErr) {
			r.asReplica = true
		}
	}
	if lostErr == nil && r.connRefused() {
		// Redis closes a connection it refused: the lane dials again
		// now rather than send the next batch to a closed connection.
		lostErr = fmt.Errorf("%w: %w: %w", engine.ErrUnavailable, engine.ErrOutcomeUnknown, ErrMaxClients)
	}
	clear(r.replies)
	return lostErr
}

// connRefused reports whether a reply of the last batch refused the
// connection itself (maxclients).
func (r *reader) connRefused() bool {
	for _, err := range r.errs {
		if isMaxClients(err) {
			return true
		}
	}
	return false
}

// deadlines sets r.by for bt. A reply is waited for no longer than the
// earliest deadline of its calls and the calls behind them in the batch:
// they cannot be answered before it. (Later batches hold later calls,
// whose deadlines are later too when their timeouts are alike, as a
// server's are.)
func (r *reader) deadlines(bt batch) {
	n := len(bt.sends)
	if cap(r.by) < n {
		r.by = make([]int64, n)
	}
	r.by = r.by[:n]
	next, end := int64(math.MaxInt64), len(bt.calls)
	for i := n - 1; i >= 0; i-- {
		for _, c := range bt.calls[end-bt.sends[i] : end] {
			next = min(next, c.deadline)
		}
		r.by[i], end = next, end-bt.sends[i]
	}
}

// replyAll reads the reply of each script call of bt into r.replies and
// r.errs. It returns why the connection is lost, if it is; the replies
// read until then stay.
func (r *reader) replyAll(bt batch) (lost error) {
	for i := range bt.sends {
		v, err, l := r.receive(r.by[i])
		if l != nil {
			return l
		}
		r.replies, r.errs = append(r.replies, v), append(r.errs, err)
	}
	return nil
}

// wait reads the reply of the durability wait that follows bt: waitErr
// when its writes are not durable, and lost as well when the connection
// is lost.
func (r *reader) wait(bt batch) (waitErr, lost error) {
	w, err, l := r.receive(bt.waitBy)
	switch {
	case l != nil:
		// The scripts ran (their replies are in) but the wait did not
		// answer in time: not durable, and the connection, still
		// blocked in it, is of no further use.
		return fmt.Errorf("%w: %w", engine.ErrNotDurable, l), l
	case err == nil:
		err = r.lane.g.b.pool.durability.check(w)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", engine.ErrNotDurable, err), nil
	}
	return nil, nil
}

// observe tells the observer of a batch read whole.
func (b *Batcher) observe(bt batch) {
	b.cfg.Observer.Batch(len(bt.calls), time.Since(bt.sent))
	if b.merges == nil {
		return
	}
	first := 0
	for _, k := range bt.sends {
		if bt.calls[first].s.Merge != nil {
			b.merges.Merged(k)
		}
		first += k
	}
}

// answer finishes calls, which went as one script call (a merged one if
// more than one), with its reply v or error reply err; waitErr is the
// batch's durability failure, if any. It reports whether err refused
// them because the node is no primary.
func (b *Batcher) answer(calls []*call, v any, err, waitErr error) (asReplica bool) {
	k := len(calls)
	var parts []any
	var bad error // the merged call ran, but its reply is not Stride elements per call
	stride := 0
	if err == nil && k > 1 {
		stride = calls[0].s.Merge.Stride
		if parts, bad = redis.Values(v, nil); bad == nil && len(parts) != k*stride {
			bad = fmt.Errorf("%d elements for %d answers of %d", len(parts), k, stride)
		}
	}
	for j, c := range calls {
		if parts != nil && bad == nil {
			v = parts[j*stride : (j+1)*stride : (j+1)*stride]
		}
		switch {
		case bad != nil:
			c.finish(nil, fmt.Errorf("%w: %w: a merged call of %d: unexpected reply: %w",
				engine.ErrUnavailable, engine.ErrOutcomeUnknown, k, bad))
		case isNoScript(err):
			// Redis forgot the script (restart, SCRIPT FLUSH): the pool
			// loads it again and runs this call once more. NOSCRIPT
			// means it did not run, so that cannot sell twice.
			if b.retries != nil {
				b.retries.Retried(RetryNoScript)
			}
			if b.refusals != nil {
				b.refusals.Refused(CauseNoScript)
			}
			go b.retry(c)
		case loneRefused(c.s, err):
			// The script's lone form did not run the call (it needs keys
			// that form has not): it goes again as the merged call of
			// one, on the pool, within its deadline.
			c.s, c.args = asMergedOne(c.s, c.args)
			go b.retry(c)
		case isMaxClients(err):
			// Redis refused this connection, not the node: the call
			// did not run, so it goes on another connection (the
			// pool's) within its deadline, and cannot sell twice.
			b.classify(err) // counted and logged
			go b.retry(c)
		case err != nil:
			cerr := b.classify(err)
			if r, ok := cerr.(*Refusal); ok && r.Cause.notPrimary() {
				asReplica = true
			}
			c.finish(nil, cerr)
		case waitErr != nil && !c.s.ReadOnly:
			c.finish(v, waitErr)
		default:
			b.pool.served()
			c.finish(v, nil)
		}
	}
	return asReplica
}

// classify is classify, counting and logging a refusal.
func (b *Batcher) classify(err error) error {
	err = classify(err)
	if r, ok := err.(*Refusal); ok {
		b.refused(r)
	}
	return err
}

// retry runs c again through the pool, within c's deadline: on another
// connection (after a maxclients refusal), loading its script first
// (after NOSCRIPT).
func (b *Batcher) retry(c *call) {
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, c.deadline))
	defer cancel()
	c.finish(b.pool.Eval(ctx, c.s, c.args...))
}

// isReply reports whether err is an error reply from Redis (the connection
// is fine) rather than a network failure.
func isReply(err error) bool {
	if err == nil { // (before re, which escapes: no allocation for success)
		return false
	}
	var re redis.Error
	return errors.As(err, &re)
}
