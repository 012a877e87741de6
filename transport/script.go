package transport

import (
	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

// Every script transport sends or loads goes through this file: how a
// script reaches Redis (its hash, its text, its key count) is known here
// only.

// sendScript writes EVALSHA of s with keysAndArgs on c, unflushed.
func sendScript(c redis.Conn, s *engine.Script, keysAndArgs ...any) error {
	return s.SendHash(c, keysAndArgs...)
}

// sendScriptText writes EVAL of s's text with keysAndArgs on c,
// unflushed: the NOSCRIPT retry, which loads the script as it runs it.
func sendScriptText(c redis.Conn, s *engine.Script, keysAndArgs ...any) error {
	return s.Send(c, keysAndArgs...)
}

// loadScript runs SCRIPT LOAD of s on c.
func loadScript(c redis.Conn, s *engine.Script) error {
	return s.Load(c)
}

// scriptSender is sendScript or sendScriptText.
type scriptSender func(c redis.Conn, s *engine.Script, keysAndArgs ...any) error
