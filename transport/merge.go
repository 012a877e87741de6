package transport

import (
	"fmt"
	"strconv"

	"github.com/flashsale/flashsale/engine"
)

// mergeable reports whether c may merge with others: its script has a
// merged form and c has the shape that form describes.
func mergeable(c *call) bool {
	m := c.s.Merge
	return m != nil && m.Script != nil && m.Max > 1 && m.SharedKeys <= m.Keys && m.Stride > 0 &&
		len(c.args) >= m.Keys+m.SharedArgs
}

// mergeKey names what calls must share to merge: their script, and (by a
// hash of them) their shared keys and arguments.
type mergeKey struct {
	s      *engine.Script
	shared uint64
}

func keyOf(c *call) mergeKey {
	m := c.s.Merge
	h := uint64(14695981039346656037) // FNV-1a
	add := func(vs []any) {
		var num [20]byte
		for _, v := range vs {
			var one []byte
			switch v := v.(type) {
			case string:
				for i := 0; i < len(v); i++ {
					h = (h ^ uint64(v[i])) * 1099511628211
				}
			case []byte:
				one = v
			case int64:
				one = strconv.AppendInt(num[:0], v, 10)
			case int:
				one = strconv.AppendInt(num[:0], int64(v), 10)
			default:
				one = []byte(argText(v))
			}
			for _, b := range one {
				h = (h ^ uint64(b)) * 1099511628211
			}
			// A separator no argument's text changes, so that no two
			// lists hash alike by shifting bytes between arguments.
			h = (h ^ 0x100) * 1099511628211
		}
	}
	add(c.args[:m.SharedKeys])
	add(c.args[m.Keys : m.Keys+m.SharedArgs])
	return mergeKey{s: c.s, shared: h}
}

// sameShared reports whether a and b, of one script, have equal shared
// keys and arguments (as Redis receives them: int64(1), 1 and "1" alike).
func sameShared(a, b *call) bool {
	m := a.s.Merge
	eq := func(x, y []any) bool {
		for i := range x {
			if !equalArg(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return eq(a.args[:m.SharedKeys], b.args[:m.SharedKeys]) &&
		eq(a.args[m.Keys:m.Keys+m.SharedArgs], b.args[m.Keys:m.Keys+m.SharedArgs])
}

// equalArg reports whether Redis receives x and y alike.
func equalArg(x, y any) bool {
	if xs, ok := x.(string); ok {
		if ys, ok := y.(string); ok {
			return xs == ys
		}
	}
	return argText(x) == argText(y)
}

// argText is an argument as Redis receives it.
func argText(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int:
		return strconv.Itoa(v)
	}
	return fmt.Sprint(v)
}

// merge orders bt's calls so that the calls that merge are adjacent, each
// run starting where its first call was, and sets bt.sends.
func (bt *batch) merge() {
	bt.sends = bt.sends[:0]
	mergeables := 0
	for _, c := range bt.calls {
		if mergeable(c) {
			mergeables++
		}
	}
	if mergeables < 2 {
		for range bt.calls {
			bt.sends = append(bt.sends, 1)
		}
		return
	}
	var (
		groups [][]*call
		open   = map[mergeKey]int{} // the group still taking calls of a key
	)
	for _, c := range bt.calls {
		if !mergeable(c) {
			groups = append(groups, []*call{c})
			continue
		}
		k := keyOf(c)
		g, ok := open[k]
		if ok && len(groups[g]) < c.s.Merge.Max && sameShared(groups[g][0], c) {
			groups[g] = append(groups[g], c)
			continue
		}
		if !ok || len(groups[g]) >= c.s.Merge.Max {
			// (A call whose hash met another's keeps a group of its own.)
			open[k] = len(groups)
		}
		groups = append(groups, []*call{c})
	}
	calls := bt.calls[:0]
	for _, g := range groups {
		calls = append(calls, g...)
		bt.sends = append(bt.sends, len(g))
	}
	bt.calls = calls
}
