package commands

import (
	"bytes"
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/flashsale/flashsale/internal/testkit/redistest"
	"github.com/flashsale/flashsale/wire"
)

func TestMain(m *testing.M) { redistest.Main(m) }

// runApp runs the flashsale command line with args and returns what it
// printed.
func runApp(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	app := NewApp("test")
	app.Writer, app.ErrWriter = &out, &out
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Run(ctx, app, append([]string{"flashsale"}, args...))
	return out.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runApp(t, args...)
	if err != nil {
		t.Fatalf("flashsale %v: %v\n%s", args, err, out)
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// appResult is what a command line run in the background ended with.
type appResult struct {
	out string
	err error
}

// goApp runs the command line with args in the background until ctx ends.
// It returns once the command's action has started: urfave/cli v2 writes
// to its global help and version flags while it parses, so no other app
// may parse at the same time.
func goApp(t *testing.T, ctx context.Context, args ...string) <-chan appResult {
	t.Helper()
	var out bytes.Buffer
	app := NewApp("test")
	app.Writer, app.ErrWriter = &out, &out
	started := make(chan struct{})
	var once sync.Once
	var wrap func(cmds []*cli.Command)
	wrap = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			if action := cmd.Action; action != nil {
				cmd.Action = func(c *cli.Context) error { once.Do(func() { close(started) }); return action(c) }
			}
			wrap(cmd.Subcommands)
		}
	}
	wrap(app.Commands)
	done := make(chan appResult, 1)
	go func() {
		err := Run(ctx, app, append([]string{"flashsale"}, args...))
		done <- appResult{out.String(), err}
	}()
	select {
	case <-started:
	case r := <-done:
		done <- r
	}
	return done
}

// startServe runs 'flashsale serve' against redisAddr on a free loopback
// port until the test ends, and returns that port's address.
func startServe(t *testing.T, redisAddr string, extra ...string) string {
	t.Helper()
	addr, _ := startServeStoppable(t, redisAddr, extra...)
	return addr
}

// startServeStoppable is startServe with a function that stops the server
// (as SIGTERM would) before the test ends; it waits until serve returned.
func startServeStoppable(t *testing.T, redisAddr string, extra ...string) (addr string, stop func()) {
	t.Helper()
	addr = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	// Tests re-create and restock products and buy at once: the sold-out
	// cache would make that a race with the control channel, so it is off
	// unless a test asks for it (TestServeSoldOutCache does).
	if !slices.Contains(extra, "--soldout-ttl") {
		extra = append(extra, "--soldout-ttl", "0")
	}
	done := goApp(t, ctx, append([]string{"serve", "--listen", addr, "--redis-addr", redisAddr,
		"--log-level", "error", "--log-format", "json"}, extra...)...)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case r := <-done:
				if r.err != nil {
					t.Errorf("serve returned %v\n%s", r.err, r.out)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("serve did not stop within 30s")
			}
		})
	}
	t.Cleanup(stop)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case r := <-done:
			t.Fatalf("serve exited early: %v\n%s", r.err, r.out)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr, stop
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("serve did not listen on %s", addr)
	return "", nil
}

// rawClient is a test's side of one protocol connection.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	rd *wire.Reader
}

func dialClient(t *testing.T, addr string) *rawClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	return &rawClient{t: t, nc: nc, rd: wire.NewReader(nc, wire.DefaultMaxPayload)}
}

func (c *rawClient) send(frames ...[]byte) {
	c.t.Helper()
	if _, err := c.nc.Write(bytes.Join(frames, nil)); err != nil {
		c.t.Fatal(err)
	}
}

// recv reads one answer.
func (c *rawClient) recv() (wire.Type, wire.Response, error) {
	f, err := c.rd.Next()
	if err != nil {
		return 0, wire.Response{}, err
	}
	var r wire.Response
	if err := wire.DecodeResponse(f.Payload, &r); err != nil {
		return f.Type, r, errors.New("bad answer " + strconv.Quote(string(f.Payload)))
	}
	return f.Type, r, nil
}

func purchaseFrame(product, user string) []byte {
	return wire.AppendFrame(nil, wire.TypePurchase,
		wire.AppendPurchase(nil, wire.PurchaseRequest{ProductID: product, UserID: user}))
}
