package engine

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// maxIndex is the highest literal index of name[...] in a Lua source.
func maxIndex(src, name string) int {
	n := 0
	for _, m := range regexp.MustCompile(regexp.QuoteMeta(name)+`\[(\d+)\]`).FindAllStringSubmatch(src, -1) {
		i, _ := strconv.Atoi(m[1])
		n = max(n, i)
	}
	return n
}

// TestSpecsMatchScripts: every spec declares as many keys as its script
// reads (KEYS[n] at most n), as many arguments when it takes no variable
// number (ARGV[n]), and its key count is its key list's.
func TestSpecsMatchScripts(t *testing.T) {
	t.Parallel()
	for _, s := range append(specs(), readInScript) {
		t.Run(s.name, func(t *testing.T) {
			if got := maxIndex(s.src, "KEYS"); got != len(s.keys) {
				t.Errorf("the script reads KEYS up to %d; the spec declares %d keys", got, len(s.keys))
			}
			if s.KeyCount() != len(s.keys) {
				t.Errorf("KeyCount %d, keys %d", s.KeyCount(), len(s.keys))
			}
			variadicArgs := len(s.args) > 0 && s.args[len(s.args)-1] == variadic
			if got := maxIndex(s.src, "ARGV"); !variadicArgs && got != len(s.args) {
				t.Errorf("the script reads ARGV up to %d; the spec declares %v", got, s.args)
			}
		})
	}
}

// TestPurchaseContract: the purchase script's outcomes are the prelude's
// locals, each used by the Lua, and one purchase's keys and arguments are
// what the spec and the merge form say.
func TestPurchaseContract(t *testing.T) {
	t.Parallel()
	if !strings.HasPrefix(purchaseSource, purchasePrelude()+"-- purchase.lua:") {
		t.Errorf("purchase.lua does not begin with its prelude, then its header: %.200q", purchaseSource)
	}
	if got := withPrelude(purchaseSource); got != purchaseSource {
		t.Error("withPrelude changed the script")
	}
	for kind, o := range outcomes {
		if o.lua == "" {
			t.Errorf("outcome %d has no Lua name", kind-1)
			continue
		}
		if !regexp.MustCompile(`\b` + o.lua + `\b`).MatchString(purchaseSource[len(purchasePrelude()):]) {
			t.Errorf("outcome %s (%d) is never used by purchase.lua", o.lua, kind-1)
		}
		if o.values > answerLen-1 {
			t.Errorf("outcome %s has %d values, more than an answer holds", o.lua, o.values)
		}
	}
	if regexp.MustCompile(`return -?\d+, `).MatchString(purchaseSource) {
		t.Error("purchase.lua returns an outcome by number, not by its name")
	}
	e := New(nil)
	for _, req := range []Request{{ProductID: "p", UserID: "u", Quantity: 1}, {ProductID: "p", UserID: "u", Quantity: 1, RequestID: "r"}} {
		args := e.purchaseArgs(&req, req.ProductID, true)
		if len(args) != purchaseArgCount {
			t.Errorf("%+v: %d keys and arguments, the spec says %d", req, len(args), purchaseArgCount)
		}
		if got := args[:len(purchaseShared)]; !slices.Equal(got, e.args.get("p").shared) {
			t.Errorf("shared keys %v", got)
		}
	}
	m := purchaseScript.Merge
	if m.Keys != purchaseScript.KeyCount() || m.Script.KeyCount() != -1 || m.Script.Source() != purchaseScript.Source() {
		t.Errorf("merge form %+v does not match the script", m)
	}
}

// TestReservationMaxHold: reservation.lua's res_max_hold, how far back a
// sweep reads a product's orders stream that has no cursor yet, is
// MaxHold, and verify.lua checks from as far back.
func TestReservationMaxHold(t *testing.T) {
	t.Parallel()
	m := regexp.MustCompile(`local res_max_hold = (\d+)\n`).FindStringSubmatch(sweepScript.src)
	if m == nil || m[1] != strconv.FormatInt(MaxHold.Milliseconds(), 10) {
		t.Errorf("res_max_hold %v, want MaxHold %d ms", m, MaxHold.Milliseconds())
	}
	if !strings.Contains(verifyScript.src, " - "+strconv.FormatInt(MaxHold.Milliseconds(), 10)+",") {
		t.Errorf("verify.lua does not read a product with no cursor from MaxHold back")
	}
}
