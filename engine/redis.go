package engine

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"time"
)

// Errors of the Redis side, produced by the transport and mapped to
// answers by Fail.
var (
	// ErrUnavailable is wrapped by every failure to get an answer from
	// Redis: no connection, a timeout, a server that is loading or read-only.
	ErrUnavailable = errors.New("redis unavailable")
	// ErrOutcomeUnknown is wrapped (with ErrUnavailable) when a script was
	// sent but no answer came back: Redis may have run it. A purchase with a
	// request_id can be retried to learn the outcome.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrRefused is wrapped (with ErrUnavailable) when Redis answered with
	// an error reply that proves the script did not run (out of memory,
	// loading, a replica, too many clients): the call can be sent again.
	ErrRefused = errors.New("refused by redis")
	// ErrStoreFull is wrapped (with ErrRefused) when Redis refused a
	// call for want of memory (OOM, maxmemory reached under noeviction):
	// nothing was written, and the call can be sent again once memory is
	// freed.
	ErrStoreFull = errors.New("the sale's store is full")
	// ErrNotDurable is wrapped when a script ran but the durability wait
	// (WAIT, WAITAOF) fell short.
	ErrNotDurable = errors.New("not confirmed durable")
)

// Script is one of the engine's Lua scripts: its source, and how its
// calls pass keys. A transport sends it as EVALSHA Hash() with KeyCount()
// keys (no count when KeyCount is -1: the count is then the first
// argument), and falls back to EVAL Source() on NOSCRIPT.
type Script struct {
	name, src, hash string
	hashArg         any // hash, boxed
	keys            int
	// ReadOnly scripts never write, so they need no durability wait.
	ReadOnly bool
	// Merge, if set, says that several calls of this script may run as one
	// call of Merge.Script (see MergeSpec); a Redis that batches may merge
	// them, one that does not runs each call as it is.
	Merge *MergeSpec
}

// newScript is the script name of source src whose calls pass keys keys
// first (-1: the key count is the first argument).
func newScript(name, src string, keys int) *Script {
	sum := sha1.Sum([]byte(src))
	hash := hex.EncodeToString(sum[:])
	return &Script{name: name, src: src, hash: hash, hashArg: hash, keys: keys}
}

// Name is the script's name, for logs and tests.
func (s *Script) Name() string { return s.name }

// Source is the script's Lua text, as SCRIPT LOAD and EVAL take it.
func (s *Script) Source() string { return s.src }

// Hash is the hex SHA-1 of Source, as EVALSHA takes it.
func (s *Script) Hash() string { return s.hash }

// HashArg is Hash as an argument of a command, boxed once: a call that
// passes it allocates nothing for it.
func (s *Script) HashArg() any { return s.hashArg }

// KeyCount is how many of a call's keysAndArgs are keys, at the front;
// -1 means the first argument is the key count (as in a merged form).
func (s *Script) KeyCount() int { return s.keys }

// MergeSpec describes how calls of a script merge into one. A call's keys
// and arguments are its shared keys (the first SharedKeys), its own keys,
// its shared arguments (the first SharedArgs) and its own arguments. Calls
// whose shared keys and arguments are all equal merge into one call of
// Script with the shared keys once, then every call's own keys in order,
// then the shared arguments once, then every call's own arguments in
// order. Script takes its key count as its first argument (its KeyCount
// is -1). Its reply, and the reply of the script alone
// (which is Script with one call), is one flat array of Stride elements
// per call, in order: the merging Redis hands call i the array of its
// Stride elements, so a caller sees the same reply merged or not.
type MergeSpec struct {
	Script     *Script
	Max        int // calls in one merged call, at most
	Keys       int // the keys of one call, shared and own
	SharedKeys int
	SharedArgs int
	Stride     int // the elements of one call's answer in the reply
	// Lone, if set, is a shorter form one call sent alone may take: it
	// appends to dst the form's key count, keys and arguments for the
	// call's keysAndArgs and reports true, or reports false when the call
	// has none (it is then sent as it is). The form runs the same script
	// with the same reply.
	Lone func(dst, keysAndArgs []any) ([]any, bool)
	// LoneRefusal, if set, begins the error reply with which a call in
	// the Lone form says that it did not run (it wrote nothing) and needs
	// another form: the transport then sends it as the merged call of
	// one (Args(1, …)), whose reply is the same.
	LoneRefusal string
	// Compact, if set, is a shorter form n calls merged may take: it
	// returns the form's key count, keys and arguments for the calls
	// call(0..n-1) and true, or false when they have none (they are then
	// merged as above). The form runs Script with the same reply.
	Compact func(n int, call func(i int) []any) ([]any, bool)
}

// Args returns the keys and arguments of the merged call of n calls, the
// i-th of which has the keys and arguments call(i) (each of this form's
// shape, the shared ones equal): the key count first, as Script wants;
// in the Compact form when the calls have it.
func (m *MergeSpec) Args(n int, call func(i int) []any) []any {
	if m.Compact != nil {
		if args, ok := m.Compact(n, call); ok {
			return args
		}
	}
	first := call(0)
	own, ownArgs := m.Keys-m.SharedKeys, len(first)-m.Keys-m.SharedArgs
	args := make([]any, 0, 1+m.SharedKeys+m.SharedArgs+n*(own+ownArgs))
	args = append(args, m.SharedKeys+n*own)
	args = append(args, first[:m.SharedKeys]...)
	for i := range n {
		args = append(args, call(i)[m.SharedKeys:m.Keys]...)
	}
	args = append(args, first[m.Keys:m.Keys+m.SharedArgs]...)
	for i := range n {
		args = append(args, call(i)[m.Keys+m.SharedArgs:]...)
	}
	return args
}

// Redis is all the engine needs from Redis: run one of its scripts, whose
// keys all belong to one product, list products, follow a channel, check
// that the server answers, and say where a key lives. The transport
// package implements it (a pool, a batcher on top, a cluster router)
// without touching purchase semantics.
type Redis interface {
	// Eval runs s with EVALSHA, loading it again if Redis lost its script
	// cache. keysAndArgs holds s's keys first, then its arguments.
	Eval(ctx context.Context, s *Script, keysAndArgs ...any) (any, error)
	// Ping checks that Redis answers.
	Ping(ctx context.Context) error
	// SlotOf names where key lives: its hash slot, and the address of the
	// master serving that slot ("" when Redis is one node, which serves
	// every slot). Sharded products put their shards on distinct slots and
	// spread them over masters by it.
	SlotOf(ctx context.Context, key string) (slot int, master string, err error)
	// Scan calls fn with every key that matches the glob pattern match.
	Scan(ctx context.Context, match string, fn func(key string) error) error
	// Subscribe calls fn with every message published on channel until ctx
	// is done (then it returns nil) or the subscription fails.
	Subscribe(ctx context.Context, channel string, fn func(payload []byte)) error
}

// AsyncRedis is a Redis that can also run a script without a waiting
// goroutine; the transport's Batcher is one.
type AsyncRedis interface {
	Redis
	// EvalAsync queues s and calls done with the reply, perhaps on another
	// goroutine; done must not block. A call still unsent at deadline
	// fails with ErrUnavailable.
	EvalAsync(deadline time.Time, s *Script, done func(any, error), keysAndArgs ...any)
}

// mergeable gives s its merged form m.
func mergeable(s *Script, m *MergeSpec) *Script {
	s.Merge = m
	return s
}
