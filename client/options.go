package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// Defaults of Options' zero fields.
const (
	DefaultTimeout   = 5 * time.Second
	DefaultKeepAlive = 30 * time.Second
)

// ErrClosed is returned by calls on a Conn that was closed or whose
// connection failed; the failure, when there was one, is wrapped with it.
var ErrClosed = errors.New("connection closed")

// Options configure a connection. The zero value dials plain TCP with the
// defaults below.
type Options struct {
	// TLS, when set, makes the connection TLS with this configuration.
	// ServerName defaults to the host of the address.
	TLS *tls.Config
	// DialTimeout bounds the connect and the TLS handshake (Timeout when 0).
	DialTimeout time.Duration
	// Timeout bounds a call whose context has no deadline
	// (DefaultTimeout when 0).
	Timeout time.Duration
	// KeepAlive is the longest a Conn stays idle: it sends a PING when
	// nothing was sent for about half of it (DefaultKeepAlive when 0;
	// negative: never). Keep it below the server's --idle-timeout.
	KeepAlive time.Duration
	// MaxPayload refuses answers longer than this (wire.DefaultMaxPayload
	// when 0).
	MaxPayload int
}

func (o Options) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return DefaultTimeout
}

func (o Options) dialTimeout() time.Duration {
	if o.DialTimeout > 0 {
		return o.DialTimeout
	}
	return o.timeout()
}

func (o Options) keepAlive() time.Duration {
	if o.KeepAlive == 0 {
		return DefaultKeepAlive
	}
	return o.KeepAlive
}

// DialError is a failure to connect to Addr: nothing was sent.
type DialError struct {
	Addr string
	Err  error
}

func (e *DialError) Error() string { return fmt.Sprintf("connect to %s: %v", e.Addr, e.Err) }

func (e *DialError) Unwrap() error { return e.Err }

// dial opens a TCP or TLS connection to addr within the dial timeout.
func dial(ctx context.Context, addr string, o Options) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, o.dialTimeout())
	defer cancel()
	nd := &net.Dialer{}
	var (
		nc  net.Conn
		err error
	)
	if o.TLS != nil {
		nc, err = (&tls.Dialer{NetDialer: nd, Config: o.TLS}).DialContext(ctx, "tcp", addr)
	} else {
		nc, err = nd.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return nil, &DialError{Addr: addr, Err: err}
	}
	return nc, nil
}

// Stream is one raw protocol connection: the caller writes whole frames
// and reads the answers in order. It is not safe for concurrent use,
// except that one goroutine may write while another reads. Deadlines are
// the caller's, set with SetReadDeadline and SetWriteDeadline.
type Stream struct {
	nc   net.Conn
	rd   *wire.Reader
	addr string
}

// DialStream connects to addr.
func DialStream(ctx context.Context, addr string, o Options) (*Stream, error) {
	nc, err := dial(ctx, addr, o)
	if err != nil {
		return nil, err
	}
	return &Stream{nc: nc, rd: wire.NewReader(nc, o.MaxPayload), addr: addr}, nil
}

// Addr is the address the stream was dialled to.
func (s *Stream) Addr() string { return s.addr }

// Write writes frames (built with the wire Append functions or a
// PurchaseEncoder) in one system call.
func (s *Stream) Write(frames []byte) error {
	_, err := s.nc.Write(frames)
	return err
}

// Next reads the next answer; its payload is valid until the next call.
func (s *Stream) Next() (wire.Frame, error) { return s.rd.Next() }

// Buffered is how many bytes of answers are read but not yet taken: when
// 0, the next Next waits for the network.
func (s *Stream) Buffered() int { return s.rd.Buffered() }

// SetReadDeadline bounds the reads: Next fails after t.
func (s *Stream) SetReadDeadline(t time.Time) error { return s.nc.SetReadDeadline(t) }

// SetWriteDeadline bounds the writes: Write fails after t.
func (s *Stream) SetWriteDeadline(t time.Time) error { return s.nc.SetWriteDeadline(t) }

// Close closes the connection; a blocked Next or Write returns.
func (s *Stream) Close() error { return s.nc.Close() }
