package transport

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
)

// SentinelConfig names the Redis Sentinels that watch the primary a Pool
// serves. Its zero value (no Addrs) means none: the pool dials
// PoolConfig.Addr and nothing else changes.
//
// With sentinels the pool asks them for the primary (SENTINEL MASTER, in
// turn, starting with the last that answered), follows their
// +switch-master messages, and asks again every Poll and whenever a node
// refuses a call as a replica (READONLY, MASTERDOWN) or a new connection
// finds, with ROLE, that the node it reached is no master. When the
// primary moves, every connection to the old one is closed (the pool's
// idle ones, the batcher's lanes, a subscription) and new ones dial the
// new primary. PoolConfig.Addr, if it is a redis:// URL, still gives the
// user, password and database; its host is ignored.
type SentinelConfig struct {
	// Addrs are the sentinels, host:port each.
	Addrs []string
	// Master is the name the sentinels monitor the primary by.
	Master string
	// Poll is how often the sentinels are asked again, the safety net for
	// a +switch-master message missed (DefaultSentinelPoll when 0).
	Poll time.Duration
}

// Enabled reports whether any sentinel is configured.
func (c SentinelConfig) Enabled() bool { return len(c.Addrs) > 0 }

// Sentinel defaults and bounds.
const (
	DefaultSentinelPoll = time.Second
	// sentinelTimeout bounds the dial and the answer of one sentinel, so a
	// dead one delays the next only briefly.
	sentinelTimeout = 500 * time.Millisecond
	// reaskGap spaces the questions asked on demand (refusals, ROLE).
	reaskGap = 100 * time.Millisecond
	// switchChannel is the sentinels' channel of completed failovers.
	switchChannel = "+switch-master"
)

// ErrNoPrimary: no sentinel named the primary.
var ErrNoPrimary = errors.New("no sentinel named the primary")

// sentinel follows the primary that cfg's sentinels name, and calls move
// with its host:port whenever it changes.
type sentinel struct {
	cfg     SentinelConfig
	netDial DialFunc
	move    func(primary string)
	log     zerolog.Logger // switches, at Info
	failLog zerolog.Logger // sentinels that do not answer, once a second
	subLog  zerolog.Logger // the subscription lost, once a second

	first atomic.Int32  // the sentinel asked first: the last that answered
	reask chan struct{} // a question asked on demand (cap 1)
	stop  chan struct{}
	once  sync.Once // of close
	wg    sync.WaitGroup

	mu      sync.Mutex // serialises the questions and the moves
	primary string     // host:port, "" until a sentinel named it
	epoch   int64      // the config epoch primary was named in
}

func newSentinel(cfg SentinelConfig, netDial DialFunc, log zerolog.Logger, move func(string)) *sentinel {
	if cfg.Poll <= 0 {
		cfg.Poll = DefaultSentinelPoll
	}
	log = log.With().Str("sentinel_master", cfg.Master).Strs("sentinels", cfg.Addrs).Logger()
	s := &sentinel{
		cfg: cfg, netDial: netDial, move: move,
		log: log, failLog: everySecond(log), subLog: everySecond(log),
		reask: make(chan struct{}, 1), stop: make(chan struct{}), epoch: -1,
	}
	s.wg.Go(s.poll)
	s.wg.Go(s.follow)
	return s
}

// close stops the sentinel's goroutines.
func (s *sentinel) close() {
	s.once.Do(func() { close(s.stop) })
	s.wg.Wait()
}

// again asks the sentinels again soon (at most every reaskGap): a node
// refused a call as a replica, or a new connection found no master.
func (s *sentinel) again() {
	select {
	case s.reask <- struct{}{}:
	default:
	}
}

// discover asks the sentinels for the primary unless one has named it.
func (s *sentinel) discover(ctx context.Context) error {
	s.mu.Lock()
	known := s.primary != ""
	s.mu.Unlock()
	if known {
		return nil
	}
	return s.refresh(ctx)
}

// refresh asks the sentinels for the primary and moves to it.
func (s *sentinel) refresh(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	addr, epoch, err := s.ask(ctx)
	if err != nil {
		return err
	}
	s.set(addr, epoch)
	return nil
}

// set moves to addr unless it is the primary already, or it was named in
// an older config epoch than the primary (a sentinel that has not heard
// of the last failover yet). s.mu is held.
func (s *sentinel) set(addr string, epoch int64) {
	if addr == s.primary || epoch < s.epoch {
		s.epoch = max(s.epoch, epoch)
		return
	}
	old := s.primary
	s.primary, s.epoch = addr, epoch
	if old == "" {
		s.log.Info().Str("primary", addr).Int64("config_epoch", epoch).Msg("redis: the sentinels name the primary")
	} else {
		s.log.Info().Str("old_primary", old).Str("new_primary", addr).Int64("config_epoch", epoch).
			Msg("redis: the primary moved; reconnecting to the new one")
	}
	s.move(addr)
}

// ask asks each sentinel in turn, starting with the one that answered
// last, and returns the first answer.
func (s *sentinel) ask(ctx context.Context) (addr string, epoch int64, err error) {
	n := len(s.cfg.Addrs)
	start := int(s.first.Load())
	var errs []error
	for i := range n {
		k := (start + i) % n
		addr, epoch, err := s.askOne(ctx, s.cfg.Addrs[k])
		if err == nil {
			s.first.Store(int32(k))
			return addr, epoch, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.cfg.Addrs[k], err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", 0, fmt.Errorf("%w %q: %w", ErrNoPrimary, s.cfg.Master, errors.Join(errs...))
}

// askOne asks the sentinel at addr, in one round trip, for the master's
// address (SENTINEL GET-MASTER-ADDR-BY-NAME, which names a promoted
// replica as soon as it is promoted) and its config epoch (from SENTINEL
// MASTER), which tells a lagging sentinel from a current one.
func (s *sentinel) askOne(ctx context.Context, addr string) (string, int64, error) {
	c, err := s.dial(ctx, addr)
	if err != nil {
		return "", 0, err
	}
	defer c.Close()
	c.Send("SENTINEL", "GET-MASTER-ADDR-BY-NAME", s.cfg.Master)
	c.Send("SENTINEL", "MASTER", s.cfg.Master)
	if err := c.Flush(); err != nil {
		return "", 0, err
	}
	hp, err := redis.Strings(redis.ReceiveWithTimeout(c, sentinelTimeout))
	if err == nil && len(hp) != 2 {
		err = fmt.Errorf("%w: it does not monitor %q", ErrNoPrimary, s.cfg.Master)
	}
	m, merr := redis.StringMap(redis.ReceiveWithTimeout(c, sentinelTimeout))
	if err = errors.Join(err, merr); err != nil {
		return "", 0, err
	}
	epoch, err := strconv.ParseInt(m["config-epoch"], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("SENTINEL MASTER %s: no config-epoch in %v", s.cfg.Master, m)
	}
	return net.JoinHostPort(hp[0], hp[1]), epoch, nil
}

func (s *sentinel) dial(ctx context.Context, addr string) (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, sentinelTimeout)
	defer cancel()
	return redis.DialContext(ctx, "tcp", addr, redis.DialContextFunc(s.netDial),
		redis.DialConnectTimeout(sentinelTimeout), redis.DialWriteTimeout(sentinelTimeout))
}

// poll asks the sentinels every Poll, and on demand (again), until close.
func (s *sentinel) poll() {
	t := time.NewTicker(s.cfg.Poll)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		case <-s.reask:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*sentinelTimeout)
		if err := s.refresh(ctx); err != nil {
			s.failLog.Warn().Err(err).Msg("redis: no sentinel answered; asking again")
		}
		cancel()
		if !s.sleep(reaskGap) {
			return
		}
	}
}

// follow subscribes to +switch-master on one sentinel after another, and
// asks again at once when a failover of the master completes.
func (s *sentinel) follow() {
	backoff := 50 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-s.stop; cancel() }()
	for k := 0; ; k++ {
		k %= len(s.cfg.Addrs)
		addr := s.cfg.Addrs[k]
		c, err := s.dial(ctx, addr)
		if err == nil {
			backoff = 50 * time.Millisecond
			err = subscribe(ctx, c, switchChannel, nil, func(payload []byte) {
				// "<name> <old ip> <old port> <new ip> <new port>"
				if f := strings.Fields(string(payload)); len(f) == 5 && f[0] == s.cfg.Master {
					s.first.Store(int32(k)) // it knows of the failover
					s.again()
				}
			})
		}
		if ctx.Err() != nil {
			return
		}
		s.subLog.Warn().Err(err).Str("sentinel", addr).Msg("redis: sentinel subscription lost; subscribing to the next sentinel")
		if !s.sleep(backoff) {
			return
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// sleep waits d, and reports false if the sentinel closed meanwhile.
func (s *sentinel) sleep(d time.Duration) bool {
	select {
	case <-s.stop:
		return false
	case <-time.After(d):
		return true
	}
}

// target is what a Pool's new connections dial.
type target struct {
	addr string // PoolConfig.Addr, or the primary's address in its form
	// moved is closed when the sentinels name another primary: the
	// connections dialled to addr are to close (nil without sentinels).
	moved chan struct{}
}

// moveTo makes primary (host:port) the pool's target, closes the moved
// channel of the old one, and drops the pooled connections.
func (p *Pool) moveTo(primary string) {
	old := p.target.Swap(&target{addr: nodeAddr(p.addr, primary), moved: make(chan struct{})})
	close(old.moved)
	p.dropConns()
}

// currentTarget is the target of a new connection: with sentinels, the
// primary they name, asked for first if none has been named yet.
func (p *Pool) currentTarget(ctx context.Context) (*target, error) {
	t := p.target.Load()
	if p.sentinel == nil || t.addr != "" {
		return t, nil
	}
	if err := p.sentinel.discover(ctx); err != nil {
		return nil, fmt.Errorf("%w: %w", engine.ErrUnavailable, err)
	}
	return p.target.Load(), nil
}

// notPrimary reports whether a refusal says that the node is no primary.
func (c Cause) notPrimary() bool { return c == CauseReadOnly || c == CauseMasterDown }

// refusedAsReplica is what the pool does when a node refused a call as a
// replica, with sentinels: ask them again, and drop the pooled
// connections, which all reach that node (at most every reaskGap).
func (p *Pool) refusedAsReplica() {
	p.sentinel.again()
	now := time.Now().UnixNano()
	if last := p.lastDrop.Load(); now-last >= int64(reaskGap) && p.lastDrop.CompareAndSwap(last, now) {
		p.dropConns()
	}
}

// checkPrimary refuses a new connection to a node that ROLE says is not
// a master, as a READONLY refusal.
func checkPrimary(c redis.Conn, timeout time.Duration, addr string) error {
	v, err := redis.Values(redis.DoWithTimeout(c, timeout, "ROLE"))
	if err != nil {
		return classify(err)
	}
	role := ""
	if len(v) > 0 {
		role, _ = redis.String(v[0], nil)
	}
	if role != "master" {
		return &Refusal{Cause: CauseReadOnly, Reply: redis.Error(fmt.Sprintf("READONLY %s is a %s, not the primary", logAddr(addr), role))}
	}
	return nil
}
