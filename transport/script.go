package transport

import (
	"errors"
	"strings"

	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

// Every script transport sends or loads goes through this file: how a
// script reaches Redis (its hash, its text, its key count) is known here
// only.

// sendScript writes EVALSHA of s with keysAndArgs on c, unflushed.
func sendScript(c redis.Conn, s *engine.Script, keysAndArgs ...any) error {
	return writeScript(c, "EVALSHA", s.HashArg(), s, keysAndArgs)
}

// sendScriptText writes EVAL of s's text with keysAndArgs on c,
// unflushed: the NOSCRIPT retry, which loads the script as it runs it.
func sendScriptText(c redis.Conn, s *engine.Script, keysAndArgs ...any) error {
	return writeScript(c, "EVAL", s.Source(), s, keysAndArgs)
}

// writeScript writes cmd body [numkeys] keysAndArgs…: the key count goes before
// keysAndArgs unless s takes it as its first argument (KeyCount -1, a
// merged form); a call whose script has a lone form it fits goes in that
// form (see engine.MergeSpec).
func writeScript(c redis.Conn, cmd string, body any, s *engine.Script, keysAndArgs []any) error {
	args := make([]any, 0, 2+len(keysAndArgs))
	args = append(args, body)
	if m := s.Merge; m != nil && m.Lone != nil {
		if lone, ok := m.Lone(args, keysAndArgs); ok {
			return c.Send(cmd, lone...)
		}
	}
	if n := s.KeyCount(); n >= 0 {
		args = append(args, n)
	}
	return c.Send(cmd, append(args, keysAndArgs...)...)
}

// loneRefused reports whether err is the reply of s's lone form refusing
// a call (engine.MergeSpec.LoneRefusal): the call did not run, and goes
// again as the merged call of one (asMergedOne).
func loneRefused(s *engine.Script, err error) bool {
	if err == nil || s.Merge == nil || s.Merge.LoneRefusal == "" {
		return false
	}
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), s.Merge.LoneRefusal)
}

// asMergedOne is the call of s with keysAndArgs as the merged call of one,
// which no lone form takes.
func asMergedOne(s *engine.Script, keysAndArgs []any) (*engine.Script, []any) {
	return s.Merge.Script, s.Merge.Args(1, func(int) []any { return keysAndArgs })
}

// loadScript runs SCRIPT LOAD of s on c.
func loadScript(c redis.Conn, s *engine.Script) error {
	_, err := c.Do("SCRIPT", "LOAD", s.Source())
	return err
}

// scriptSender is sendScript or sendScriptText.
type scriptSender func(c redis.Conn, s *engine.Script, keysAndArgs ...any) error
