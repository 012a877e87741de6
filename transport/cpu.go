package transport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"
)

// NodeCPU is the CPU time a Redis server process has used since it
// started, as INFO cpu reports it (used_cpu_user + used_cpu_sys).
type NodeCPU struct {
	Addr    string
	Seconds float64
}

// ErrNoCPUInfo: the server's INFO has no cpu section (the embedded store).
var ErrNoCPUInfo = errors.New("INFO cpu has no used_cpu_user/used_cpu_sys")

// CPU reads the CPU time of the Redis behind p.
func (p *Pool) CPU(ctx context.Context) ([]NodeCPU, error) {
	v, err := p.do(ctx, func(c redis.Conn, d time.Duration) (any, error) {
		return redis.String(redis.DoWithTimeout(c, d, "INFO", "cpu"))
	})
	if err != nil {
		return nil, err
	}
	s, err := parseCPU(v.(string))
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", p.target.Load().addr, err)
	}
	return []NodeCPU{{Addr: p.target.Load().addr, Seconds: s}}, nil
}

// CPU reads the CPU time of every master of the cluster.
func (c *Cluster) CPU(ctx context.Context) ([]NodeCPU, error) {
	var out []NodeCPU
	err := c.eachMaster(ctx, func(n *clusterNode) error {
		cpu, err := n.pool.CPU(ctx)
		out = append(out, cpu...)
		return err
	})
	return out, err
}

// parseCPU sums used_cpu_user and used_cpu_sys in an INFO cpu reply.
func parseCPU(info string) (float64, error) {
	var sum float64
	found := 0
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (k != "used_cpu_user" && k != "used_cpu_sys") {
			continue
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return 0, fmt.Errorf("INFO cpu %s: %w", k, err)
		}
		sum += f
		found++
	}
	if found != 2 {
		return 0, ErrNoCPUInfo
	}
	return sum, nil
}
