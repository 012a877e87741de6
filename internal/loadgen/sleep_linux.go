package loadgen

import (
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// timerfd is a Linux timerfd read through the runtime's poller: a
// goroutine reading it parks, and wakes when it fires.
type timerfd struct {
	fd  int      // for TimerfdSettime (f.Fd would make f blocking)
	f   *os.File // for reading, through the poller
	buf [8]byte
}

// newFineTimer returns a timerfd, or nil if the system refuses one.
func newFineTimer() fineTimer {
	fd, err := unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC)
	if err != nil {
		return nil
	}
	return &timerfd{fd: fd, f: os.NewFile(uintptr(fd), "timerfd")}
}

func (t *timerfd) wait(d time.Duration) error {
	spec := unix.ItimerSpec{Value: unix.NsecToTimespec(int64(max(d, time.Microsecond)))}
	if err := unix.TimerfdSettime(t.fd, 0, &spec, nil); err != nil {
		return err
	}
	// The read returns the expirations since the timer was set (8 bytes)
	// once it has fired.
	_, err := t.f.Read(t.buf[:])
	return err
}

func (t *timerfd) close() { t.f.Close() }
