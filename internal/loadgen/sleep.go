package loadgen

import (
	"time"
)

// fineWait is how close to its end a wait moves from a Go timer to the
// fine timer, where there is one.
const fineWait = 2 * time.Millisecond

// A sleeper is a worker's way to wait. A Go timer due in less than a
// millisecond, while the process has nothing else to run, fires up to a
// millisecond late: the runtime then waits in epoll, whose timeout counts
// whole milliseconds. An open loop's requests are due microseconds apart
// and their latency runs from when they were due, so that lateness would
// be counted as the server's (at 10,000 requests/s against a server that
// answers at once it made the median 0.46 ms and p99 1.5 ms). So a sleeper
// waits on a Go timer until the last fineWait, then on a fine timer (a
// Linux timerfd, which the runtime's poller wakes on to the microsecond).
type sleeper struct {
	t    *time.Timer
	fine fineTimer // nil where there is none, or it failed
}

// fineTimer waits for d, to the microsecond.
type fineTimer interface {
	wait(d time.Duration) error
	close()
}

// newSleeper returns a sleeper, with a fine timer if fine and the system
// has one.
func newSleeper(fine bool) *sleeper {
	s := &sleeper{t: time.NewTimer(time.Hour)}
	s.t.Stop()
	if fine {
		s.fine = newFineTimer()
	}
	return s
}

// until waits until due (ns since the generator's start), or until stop is
// closed: then it returns false.
func (s *sleeper) until(g *Generator, due int64, stop <-chan struct{}) bool {
	for {
		d := time.Duration(due - g.since())
		if d <= 0 {
			return true
		}
		if s.fine != nil && d <= fineWait {
			if err := s.fine.wait(d); err != nil {
				s.close()
			}
			continue
		}
		if s.fine != nil {
			d -= fineWait
		}
		s.t.Reset(d)
		select {
		case <-s.t.C:
		case <-stop:
			s.t.Stop()
			return false
		}
	}
}

// close releases the fine timer; the sleeper goes on with the Go timer.
func (s *sleeper) close() {
	if s.fine != nil {
		s.fine.close()
		s.fine = nil
	}
}
