package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// EnvRequireReal names the variable that, set to "real", forbids running
// the tests on the embedded store (set to EnvEmbedded, it forces it).
const EnvRequireReal = "FLASHSALE_TEST_REDIS"

// Kind says what kind of Redis a test got.
type Kind string

// Kinds of Redis.
const (
	KindExternal  Kind = "REDIS_ADDR"
	KindProcess   Kind = "redis-server"
	KindContainer Kind = "testcontainers"
	KindEmbedded  Kind = "miniredis (not a real Redis)"
)

var (
	once    sync.Once
	shared  string
	kind    Kind
	failure error
	// describe says what the shared Redis is, for UsingMarker.
	describe string
	cleanup  []func()
	// inMain is set while Main runs the tests: only then is the shared
	// Redis stopped when they end.
	inMain bool
)

// Main runs a package's tests and then stops the Redis they shared:
//
//	func TestMain(m *testing.M) { redistest.Main(m) }
func Main(m *testing.M) {
	inMain = true
	code := m.Run()
	for _, f := range cleanup {
		f()
	}
	os.Exit(code)
}

// Addr returns the address of the package's shared Redis, starting it on
// first use. It fails the test when no Redis can be had, or when the
// package's TestMain is not Main's (the server would be left running).
func Addr(tb testing.TB) string {
	tb.Helper()
	if !inMain {
		// Without Main the server would outlive the test binary.
		tb.Fatal("redistest: the shared Redis needs the package's tests run by redistest.Main: add func TestMain(m *testing.M) { redistest.Main(m) }")
	}
	once.Do(func() {
		shared, kind, failure = start()
		if failure == nil {
			describe = describeShared()
		}
	})
	if failure != nil {
		tb.Fatalf("redistest: %v", failure)
	}
	announce(tb)
	return shared
}

// Real reports whether the shared Redis is a real Redis, not the embedded
// store. Tests of behaviour that only a real Redis has (SCRIPT FLUSH,
// server restarts) may need it.
func Real(tb testing.TB) bool {
	tb.Helper()
	Addr(tb)
	return kind != KindEmbedded
}

func start() (string, Kind, error) {
	if simulated() {
		return startEmbedded(EnvRequireReal + "=" + EnvEmbedded)
	}
	if addr := os.Getenv("REDIS_ADDR"); addr != "" {
		if err := waitPing(addr, 2*time.Second); err != nil {
			return "", "", fmt.Errorf("REDIS_ADDR=%s does not answer: %w", addr, err)
		}
		return addr, KindExternal, nil
	}
	var reasons []string
	if bin, err := exec.LookPath("redis-server"); err == nil {
		s, err := StartServer(bin)
		if err == nil {
			cleanup = append(cleanup, s.Stop)
			return s.Addr, KindProcess, nil
		}
		reasons = append(reasons, err.Error())
	} else {
		reasons = append(reasons, "redis-server is not on $PATH (apt-get install redis-server)")
	}
	if addr, stop, err := startContainer(); err == nil {
		cleanup = append(cleanup, stop)
		return addr, KindContainer, nil
	} else {
		reasons = append(reasons, err.Error())
	}
	why := strings.Join(reasons, "; ")
	if os.Getenv(EnvRequireReal) == "real" {
		return "", "", fmt.Errorf("no real Redis and %s=real forbids the embedded store: %s", EnvRequireReal, why)
	}
	return startEmbedded(why)
}

// startEmbedded starts the embedded store, warning on stderr why (which
// go test shows only for a failing package; scripts/gotest counts the
// tests that ran on it).
func startEmbedded(why string) (string, Kind, error) {
	mr, err := miniredis.Run()
	if err != nil {
		return "", "", err
	}
	cleanup = append(cleanup, mr.Close)
	fmt.Fprintf(os.Stderr, "\n"+
		"!!! redistest: NO REAL REDIS (%s).\n"+
		"!!! These tests ran on the embedded miniredis store. Install redis-server\n"+
		"!!! or set REDIS_ADDR; set %s=real to make this an error.\n\n", why, EnvRequireReal)
	return mr.Addr(), KindEmbedded, nil
}

// describeShared names the shared Redis: its kind and, for a real one, its
// version.
func describeShared() string {
	if kind == KindEmbedded {
		return string(kind)
	}
	c, err := dial(shared, redis.DialConnectTimeout(2*time.Second), redis.DialReadTimeout(2*time.Second))
	if err != nil {
		return fmt.Sprintf("%s (version unknown: %v)", kind, err)
	}
	defer c.Close()
	info, err := redis.String(c.Do("INFO", "server"))
	if err != nil {
		return fmt.Sprintf("%s (version unknown: %v)", kind, err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return fmt.Sprintf("Redis %s (%s)", v, kind)
		}
	}
	return fmt.Sprintf("%s (version unknown)", kind)
}

// Server is a redis-server process owned by a test.
type Server struct {
	Addr string
	bin  string
	args []string
	dir  string
	cmd  *exec.Cmd
	// gone is closed once the current process has exited and been reaped.
	gone chan struct{}
}

// StartServer starts redis-server bin on a free loopback port with no
// persistence, plus any extra configuration arguments (such as
// "--appendonly", "yes"), and waits until it answers.
func StartServer(bin string, extra ...string) (*Server, error) {
	return startServer(bin, freePort, "", extra...)
}

// startServer is StartServer with the port chosen by pick, tried up to
// three times (another process may take a free port before redis-server
// binds it). A conf that is not empty is written to the server's
// directory and given as its configuration file (a sentinel's, which
// Sentinel rewrites).
func startServer(bin string, pick func() (int, error), conf string, extra ...string) (*Server, error) {
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	var first []string
	if conf != "" {
		file := filepath.Join(dir, "redis.conf")
		if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		first = []string{file}
	}
	var last error
	for range 3 {
		port, err := pick()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		s := &Server{
			Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			bin:  bin,
			dir:  dir,
			args: append(append(first,
				"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--save", "", "--appendonly", "no", "--dir", dir,
				"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning",
				"--logfile", filepath.Join(dir, "redis.log"),
			), extra...),
		}
		if last = s.Start(); last == nil {
			return s, nil
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", last)
}

// Start (re)starts the server process on its address.
func (s *Server) Start() error {
	cmd := exec.Command(s.bin, s.args...)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd = cmd
	exited := make(chan error, 1)
	gone := make(chan struct{})
	s.gone = gone
	// cmd, not s.cmd: a later Restart replaces s.cmd while this waits.
	go func() { exited <- cmd.Wait(); close(gone) }()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited: %v: %s", err, bytes.TrimSpace(log))
		default:
		}
		if waitPing(s.Addr, 100*time.Millisecond) == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.cmd.Process.Kill()
	return errors.New("redis-server did not answer PING within 5s")
}

// Stop kills the process and removes its directory.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
	}
	os.RemoveAll(s.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dial(addr string, opts ...redis.DialOption) (redis.Conn, error) {
	if strings.Contains(addr, "://") {
		return redis.DialURL(addr, opts...)
	}
	return redis.Dial("tcp", addr, opts...)
}

func waitPing(addr string, timeout time.Duration) error {
	c, err := dial(addr, redis.DialConnectTimeout(timeout), redis.DialReadTimeout(timeout))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do("PING")
	return err
}

// startContainer runs Redis in a container when a Docker engine is reachable.
func startContainer() (addr string, stop func(), err error) {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return "", nil, errors.New("no Docker engine for testcontainers")
		}
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("testcontainers: %v", r)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := tcredis.Run(ctx, "redis:7-alpine")
	if err != nil {
		return "", nil, fmt.Errorf("testcontainers: %w", err)
	}
	url, err := c.ConnectionString(ctx)
	if err != nil {
		c.Terminate(context.Background())
		return "", nil, fmt.Errorf("testcontainers: %w", err)
	}
	return url, func() { c.Terminate(context.Background()) }, nil
}

var seq atomic.Int64

// Product returns a product id no other test in this run uses.
func Product(tb testing.TB) string {
	name := strings.NewReplacer("/", "-", " ", "_", "{", "(", "}", ")").Replace(tb.Name())
	return fmt.Sprintf("t-%s-%d-%d", name, os.Getpid(), seq.Add(1))
}

// Conn opens a plain connection to addr, closed when the test ends.
func Conn(tb testing.TB, addr string) redis.Conn {
	tb.Helper()
	c, err := dial(addr)
	if err != nil {
		tb.Fatalf("redistest: dial %s: %v", addr, err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// Dir returns the data directory of s, for persistence tests.
func (s *Server) Dir() string { return filepath.Clean(s.dir) }
