package transport

import (
	"net/url"
	"time"

	"github.com/rs/zerolog"
)

// everySecond is log limited to one event a second, as the dashboard
// limits its refusals: a failure that repeats (Redis down, a node that
// flaps) is seen, not flooded. Each cause logs through a limiter of its
// own, so one that repeats does not hide another.
func everySecond(log zerolog.Logger) zerolog.Logger {
	return log.Sample(&zerolog.BurstSampler{Burst: 1, Period: time.Second})
}

// logAddr is addr fit for a log: a redis:// URL without its password.
func logAddr(addr string) string {
	if u, err := url.Parse(addr); err == nil && u.User != nil {
		return u.Redacted()
	}
	return addr
}
