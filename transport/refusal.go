package transport

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
)

// Cause is why Redis refused a call: an error reply that proves the
// script did not run (Redis answers it before it runs a script, or a
// script's first write, which writes nothing, fails on it).
type Cause int

// The causes of a refusal.
const (
	// CauseMaxClients: ERR max number of clients reached, sent by Redis
	// on a connection it accepted and is about to close. The connection
	// is of no use; another one may be.
	CauseMaxClients Cause = iota
	// CauseLoading: LOADING, Redis is loading its data set after a start.
	CauseLoading
	// CauseReadOnly: READONLY, the node is a replica.
	CauseReadOnly
	// CauseMasterDown: MASTERDOWN, a replica lost its master and serves
	// no stale data.
	CauseMasterDown
	// CauseOOM: OOM, maxmemory reached under the noeviction policy.
	CauseOOM
	// CauseMisconf: MISCONF, Redis cannot persist and refuses writes.
	CauseMisconf
	// CauseBusy: BUSY, a script has run past lua-time-limit.
	CauseBusy
	// CauseNoScript: NOSCRIPT, the script is not cached; it is sent
	// again as EVAL (see Pool.Eval and Batcher.retry).
	CauseNoScript
	numCauses
)

// Sentinels of the causes: a refusal wraps its cause's (and
// engine.ErrRefused, and engine.ErrUnavailable; CauseOOM engine.ErrStoreFull). Each says what the
// operator does next.
var (
	ErrMaxClients = errors.New("redis refused the connection: raise maxclients")
	ErrLoading    = errors.New("Redis is loading its data set")
	ErrReadOnly   = errors.New("the node is a replica: check the failover")
	ErrMasterDown = errors.New("the replica lost its master: check the failover")
	ErrOOM        = errors.New("maxmemory reached: raise it or free memory")
	ErrMisconf    = errors.New("Redis cannot persist (MISCONF): check its disk")
	ErrBusy       = errors.New("a script is busy (BUSY): wait for it or SCRIPT KILL it")
	ErrNoScript   = errors.New("the script was not cached (NOSCRIPT); it is loaded again")
)

// refusals is the one table of refusals: the error reply's prefix, the
// cause's metric label and its sentinel, by Cause. A reply matches a
// prefix followed by a space or the end.
var refusals = [numCauses]struct {
	prefix, label string
	err           error
}{
	CauseMaxClients: {"ERR max number of clients reached", "maxclients", ErrMaxClients},
	CauseLoading:    {"LOADING", "loading", ErrLoading},
	CauseReadOnly:   {"READONLY", "readonly", ErrReadOnly},
	CauseMasterDown: {"MASTERDOWN", "masterdown", ErrMasterDown},
	CauseOOM:        {"OOM", "oom", ErrOOM},
	CauseMisconf:    {"MISCONF", "misconf", ErrMisconf},
	CauseBusy:       {"BUSY", "busy", ErrBusy},
	CauseNoScript:   {"NOSCRIPT", "noscript", ErrNoScript},
}

// String is the cause's metric label: maxclients, loading, readonly,
// masterdown, oom, misconf, busy or noscript.
func (c Cause) String() string {
	if c < 0 || c >= numCauses {
		return "unknown"
	}
	return refusals[c].label
}

// Err is the cause's sentinel error, which says what to do next.
func (c Cause) Err() error {
	if c < 0 || c >= numCauses {
		return nil
	}
	return refusals[c].err
}

// Causes lists every Cause, in order (c == Causes()[c]).
func Causes() []Cause {
	cs := make([]Cause, numCauses)
	for i := range cs {
		cs[i] = Cause(i)
	}
	return cs
}

// Refusal is an error reply that proves the call did not run. It wraps
// its cause's sentinel, engine.ErrRefused and engine.ErrUnavailable (and,
// for CauseOOM, engine.ErrStoreFull), never engine.ErrOutcomeUnknown.
type Refusal struct {
	Cause Cause
	Reply redis.Error // what Redis said
}

func (r *Refusal) Error() string {
	return fmt.Sprintf("%v: %v: %s", engine.ErrRefused, r.Cause.Err(), string(r.Reply))
}

// Unwrap is the cause's sentinel, engine.ErrRefused, engine.ErrUnavailable
// and the reply; for CauseOOM engine.ErrStoreFull too, so the buyer is
// told STORE_FULL.
func (r *Refusal) Unwrap() []error {
	errs := []error{r.Cause.Err(), engine.ErrRefused, engine.ErrUnavailable, r.Reply}
	if r.Cause == CauseOOM {
		errs = append(errs, engine.ErrStoreFull)
	}
	return errs
}

// isMaxClients reports whether err is the maxclients refusal, which is
// of one connection, not of the node.
func isMaxClients(err error) bool {
	r, ok := refusalOf(err)
	return ok && r.Cause == CauseMaxClients
}

// refusalOf returns the refusal err is, if err is an error reply that
// proves the call did not run.
func refusalOf(err error) (*Refusal, bool) {
	if err == nil { // (before re, which escapes: no allocation for success)
		return nil, false
	}
	var re redis.Error
	if !errors.As(err, &re) {
		return nil, false
	}
	if c, ok := causeOf(string(re)); ok {
		return &Refusal{Cause: c, Reply: re}, true
	}
	return nil, false
}

// causeOf is the cause of the error reply text, if it is a refusal.
func causeOf(reply string) (Cause, bool) {
	for c, r := range refusals {
		if rest, ok := strings.CutPrefix(reply, r.prefix); ok && (rest == "" || rest[0] == ' ' || rest[0] == '.') {
			return Cause(c), true
		}
	}
	return 0, false
}

// refusalMemory is how long a refusal of a node (not of one connection)
// keeps Ping failing while no call has succeeded since: readiness learns
// from the calls, since a PING succeeds under OOM, READONLY or MISCONF.
const refusalMemory = 2 * time.Second

// refusalSeen is the last refusal of a node and when it came.
type refusalSeen struct {
	r  *Refusal
	at time.Time
}

// refusalLogs logs each cause at most once a second, with its next step.
type refusalLogs [numCauses]zerolog.Logger

func newRefusalLogs(log zerolog.Logger) *refusalLogs {
	var l refusalLogs
	for c := range l {
		l[c] = everySecond(log)
	}
	return &l
}

// refused logs r (NOSCRIPT, which is retried at once, is not) and, when
// it is a refusal of the whole node, keeps it for Ping; with sentinels, a
// node that refuses as a replica sends the pool to ask them again. A
// maxclients line says the current maxclients, which a goroutine reads
// first (see logMaxClients).
func (p *Pool) refused(r *Refusal) {
	if r.Cause == CauseNoScript {
		return
	}
	e := p.refusalLog[r.Cause].Warn() // nil when the line is sampled out
	if e != nil {
		e = e.Str("cause", r.Cause.String()).Str("reply", string(r.Reply))
		if r.Cause == CauseMaxClients && p.maxClientsLogging.CompareAndSwap(false, true) {
			go p.logMaxClients(e)
		} else {
			e.Str("next_step", r.Cause.Err().Error()).Msg(msgRefusedCall)
		}
	}
	if r.Cause != CauseMaxClients {
		p.lastRefusal.Store(&refusalSeen{r: r, at: time.Now()})
	}
	if p.sentinel != nil && r.Cause.notPrimary() {
		p.refusedAsReplica()
	}
}

// msgRefusedCall is the message of a refusal's log line.
const msgRefusedCall = "redis refused a call: it did not run"

// maxClientsTimeout bounds the CONFIG GET of a maxclients log line.
const maxClientsTimeout = 200 * time.Millisecond

// logMaxClients sends e, a maxclients refusal's line, with the next step
// "raise maxclients (now N)", N read with CONFIG GET on a pooled
// connection within maxClientsTimeout; without N when that fails. Only
// one runs at a time (maxClientsLogging), off the caller's path.
func (p *Pool) logMaxClients(e *zerolog.Event) {
	defer p.maxClientsLogging.Store(false)
	next := ErrMaxClients.Error()
	if n, err := p.maxClients(); err == nil {
		next += " (now " + n + ")"
	}
	e.Str("next_step", next).Msg(msgRefusedCall)
}

// maxClients is Redis's maxclients, read on a pooled connection (an idle
// one if there is: Redis at maxclients refuses a new one).
func (p *Pool) maxClients() (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), maxClientsTimeout)
	defer cancel()
	c, err := p.pool.Load().GetContext(ctx)
	if err != nil {
		return "", err
	}
	defer c.Close()
	kv, err := redis.StringMap(redis.DoWithTimeout(c, maxClientsTimeout, "CONFIG", "GET", "maxclients"))
	if err != nil {
		return "", err
	}
	n, ok := kv["maxclients"]
	if !ok {
		return "", errors.New("CONFIG GET maxclients: no value")
	}
	return n, nil
}

// served notes that a script call succeeded: the node serves.
func (p *Pool) served() {
	if p.lastRefusal.Load() != nil {
		p.lastRefusal.Store(nil)
	}
}

// recentRefusal is the node's refusal seen within refusalMemory with no
// call served since, or nil.
func (p *Pool) recentRefusal() error {
	if s := p.lastRefusal.Load(); s != nil && time.Since(s.at) < refusalMemory {
		return s.r
	}
	return nil
}

// hello checks a new connection with PING: a Redis at maxclients accepts
// the TCP connection, answers its first command with a refusal and
// closes it, so such a connection is refused here, before it carries a
// call. Other error replies (LOADING) leave the connection usable.
func hello(c redis.Conn, timeout time.Duration) error {
	_, err := redis.DoWithTimeout(c, timeout, "PING")
	if r, ok := refusalOf(err); ok && r.Cause != CauseMaxClients {
		return nil
	}
	return classify(err)
}
