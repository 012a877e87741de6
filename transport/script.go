package transport

import (
	"github.com/gomodule/redigo/redis"

	"github.com/flashsale/flashsale/engine"
)

// sendScript writes one call of s on conn (not flushed): EVALSHA of its
// hash, or, with source, EVAL of its text (which also caches it again
// after a NOSCRIPT). The key count goes before keysAndArgs unless s takes
// it as its first argument (KeyCount -1, a merged form).
func sendScript(conn redis.Conn, s *engine.Script, source bool, keysAndArgs []any) error {
	cmd, body := "EVALSHA", s.Hash()
	if source {
		cmd, body = "EVAL", s.Source()
	}
	if n := s.KeyCount(); n >= 0 {
		args := make([]any, 0, 2+len(keysAndArgs))
		return conn.Send(cmd, append(append(args, body, n), keysAndArgs...)...)
	}
	args := make([]any, 0, 1+len(keysAndArgs))
	return conn.Send(cmd, append(append(args, body), keysAndArgs...)...)
}

// loadScript caches s in the Redis of conn (SCRIPT LOAD).
func loadScript(conn redis.Conn, s *engine.Script) error {
	_, err := conn.Do("SCRIPT", "LOAD", s.Source())
	return err
}
