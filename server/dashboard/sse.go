package dashboard

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// retryMs is how long a browser waits before reconnecting a lost stream.
const retryMs = 2000

// refusedRetry is the Retry-After, in seconds, of a stream refused for
// MaxClients.
const refusedRetry = 10

// heartbeat is the comment an idle stream gets.
var heartbeat = []byte(": ping\n\n")

// hello is the data of the first event of every stream.
type hello struct {
	IntervalMs int64 `json:"interval_ms"` // how often sales messages come
	Clients    int   `json:"clients"`     // streams open, this one included
}

// events serves one browser's stream until its request ends, Config.Done
// is closed, or a write fails or times out.
func (d *dashboard) events(w http.ResponseWriter, r *http.Request) {
	c, err := d.hub.join()
	if err != nil {
		n := d.refusals.Add(1)
		d.refusedLog.Warn().Err(err).Str("remote", r.RemoteAddr).Int("max", d.cfg.MaxClients).Int64("refused_total", n).Msg("dashboard stream refused")
		w.Header().Set("Retry-After", strconv.Itoa(refusedRetry))
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	defer d.hub.leave(c)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	s := &stream{w: w, rc: http.NewResponseController(w), timeout: d.cfg.WriteTimeout}
	first := fmt.Appendf(nil, "retry: %d\n", retryMs)
	first = append(first, sseMessage("hello", hello{IntervalMs: d.cfg.Interval.Milliseconds(), Clients: d.hub.clientCount()})...)
	if s.write(first) != nil {
		return
	}
	beat := time.NewTicker(d.cfg.Heartbeat)
	defer beat.Stop()
	for {
		var err error
		select {
		case <-r.Context().Done():
			return
		case <-d.cfg.Done:
			return
		case <-beat.C:
			err = s.write(heartbeat)
		case m := <-c.ch:
			err = s.write(s.batch(c, m))
		}
		if err != nil {
			if !errors.Is(err, r.Context().Err()) {
				d.cfg.Logger.Debug().Err(err).Str("remote", r.RemoteAddr).Msg("dashboard stream ended")
			}
			return
		}
	}
}

// stream writes to one browser, each write bounded in time.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

// batch joins m and the messages queued behind it, so a burst is one
// write and one flush.
func (s *stream) batch(c *client, m []byte) []byte {
	s.buf = append(s.buf[:0], c.next(m)...)
	for {
		select {
		case m := <-c.ch:
			s.buf = append(s.buf, c.next(m)...)
		default:
			return s.buf
		}
	}
}

// write sends b and flushes it within the write timeout. The deadline is
// set on every write, which also lifts any server-wide WriteTimeout that
// would cut a long stream.
func (s *stream) write(b []byte) error {
	if err := s.rc.SetWriteDeadline(time.Now().Add(s.timeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}
