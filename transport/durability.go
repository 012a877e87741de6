package transport

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Durability is what a write waits for before the engine acknowledges it.
// The zero value waits for nothing: a sale is acknowledged once Redis has
// applied it in memory (and whatever its appendfsync setting promises).
type Durability struct {
	// Replicas is how many replicas must have the write (WAIT).
	Replicas int
	// AOF requires the write fsynced to the local append-only file
	// (WAITAOF, Redis 7.2 or later), and to Replicas replicas' AOF.
	AOF bool
	// Timeout bounds the wait.
	Timeout time.Duration
}

// DefaultDurabilityTimeout bounds a durability wait.
const DefaultDurabilityTimeout = time.Second

// ParseDurability reads "none", "replicas:N", "aof" or "aof:N" (the local
// AOF and N replicas' AOF).
func ParseDurability(s string, timeout time.Duration) (Durability, error) {
	if timeout <= 0 {
		timeout = DefaultDurabilityTimeout
	}
	d := Durability{Timeout: timeout}
	mode, n, hasN := strings.Cut(s, ":")
	replicas := 0
	if hasN {
		var err error
		if replicas, err = strconv.Atoi(n); err != nil || replicas < 1 {
			return d, fmt.Errorf("durability %q: N must be 1 or more", s)
		}
	}
	switch {
	case mode == "none" && !hasN:
	case mode == "replicas" && hasN:
		d.Replicas = replicas
	case mode == "aof":
		d.AOF, d.Replicas = true, replicas
	default:
		return d, fmt.Errorf("durability %q: want none, replicas:N, aof or aof:N", s)
	}
	return d, nil
}

// Enabled reports whether writes wait for anything.
func (d Durability) Enabled() bool { return d.AOF || d.Replicas > 0 }

// String is the flag form.
func (d Durability) String() string {
	switch {
	case d.AOF && d.Replicas > 0:
		return "aof:" + strconv.Itoa(d.Replicas)
	case d.AOF:
		return "aof"
	case d.Replicas > 0:
		return "replicas:" + strconv.Itoa(d.Replicas)
	}
	return "none"
}

// send queues the wait command after a write on c, waiting at most
// timeout (at least 1 ms: WAIT 0 would block for ever).
func (d Durability) send(c redis.Conn, timeout time.Duration) error {
	ms := max(timeout.Milliseconds(), 1)
	if d.AOF {
		return c.Send("WAITAOF", 1, d.Replicas, ms)
	}
	return c.Send("WAIT", d.Replicas, ms)
}

// check reads the wait's reply: WAIT gives the replicas reached, WAITAOF
// {local, replicas}.
func (d Durability) check(reply any) error {
	if d.AOF {
		n, err := redis.Int64s(reply, nil)
		if err != nil || len(n) != 2 {
			return fmt.Errorf("WAITAOF: unexpected reply %v: %v", reply, err)
		}
		if n[0] < 1 || n[1] < int64(d.Replicas) {
			return fmt.Errorf("WAITAOF reached the local AOF %d time(s) and %d of %d replica(s) in %s", n[0], n[1], d.Replicas, d.Timeout)
		}
		return nil
	}
	n, err := redis.Int64(reply, nil)
	if err != nil {
		return fmt.Errorf("WAIT: %w", err)
	}
	if n < int64(d.Replicas) {
		return fmt.Errorf("WAIT reached %d of %d replica(s) in %s", n, d.Replicas, d.Timeout)
	}
	return nil
}

// CheckDurability fails when Redis cannot provide d: WAITAOF needs Redis
// 7.2 or later.
func (p *Pool) CheckDurability(ctx context.Context) error {
	if !p.durability.AOF {
		return nil
	}
	v, err := p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
		return redis.String(redis.DoWithTimeout(c, d, "INFO", "server"))
	})
	if err != nil {
		return err
	}
	version := ""
	for _, line := range strings.Split(v.(string), "\n") {
		if after, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			version = after
		}
	}
	if !versionAtLeast(version, 7, 2) {
		return fmt.Errorf("--durability %s needs WAITAOF, which Redis 7.2 added; this Redis is %q: use replicas:N, or none with appendfsync always", p.durability, version)
	}
	return nil
}

func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
