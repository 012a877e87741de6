package redistest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// ServerBin returns the path of redis-server, for tests that need a Redis
// process of their own (to kill it, freeze it, replicate it). Without one
// the test is skipped (see Skip), or fails when FLASHSALE_TEST_REDIS=real;
// FLASHSALE_TEST_REDIS=embedded skips it too.
func ServerBin(tb testing.TB) string {
	tb.Helper()
	if simulated() {
		Skip(tb, NeedRedis, "this test needs a redis-server process of its own, and "+EnvRequireReal+"="+EnvEmbedded)
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if _, serr := os.Stat("/usr/bin/redis-server"); serr == nil {
			return "/usr/bin/redis-server"
		}
		if os.Getenv(EnvRequireReal) == "real" {
			tb.Fatalf("redistest: this test needs a redis-server process of its own and %s=real: %v", EnvRequireReal, err)
		}
		Skip(tb, NeedRedis, "this test needs a redis-server process of its own (to kill or freeze it), and redis-server is not on $PATH (apt-get install redis-server): "+err.Error())
	}
	return bin
}

// StartTestServer starts a redis-server owned by the test (see ServerBin and
// StartServer) and stops it when the test ends.
func StartTestServer(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := StartServer(ServerBin(tb), extra...)
	if err != nil {
		tb.Fatalf("redistest: %v", err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Port returns the port of s, as redis-server flags want it.
func (s *Server) Port() string {
	_, port, _ := net.SplitHostPort(s.Addr)
	return port
}

// Pid returns the process id of the running server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Signal sends sig to the server process (syscall.SIGSTOP freezes it,
// syscall.SIGCONT thaws it).
func (s *Server) Signal(sig os.Signal) error {
	if s.cmd == nil || s.cmd.Process == nil {
		return errors.New("redistest: server not started")
	}
	return s.cmd.Process.Signal(sig)
}

// Kill crashes the server with SIGKILL (a frozen one too) and waits until
// the process is gone and its port is free.
func (s *Server) Kill() error {
	if err := s.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-s.gone:
	case <-time.After(5 * time.Second):
		return fmt.Errorf("redistest: redis-server %d still running 5s after SIGKILL", s.cmd.Process.Pid)
	}
	return nil
}

// Restart kills the server if it runs and starts it again on the same
// address, directory and configuration: with persistence on, it reloads
// its data.
func (s *Server) Restart() error {
	select {
	case <-s.gone:
	default:
		if err := s.Kill(); err != nil {
			return err
		}
	}
	return s.Start()
}
