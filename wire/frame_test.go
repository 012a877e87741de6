package wire_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"

	"github.com/flashsale/flashsale/wire"
)

var update = flag.Bool("update", false, "rewrite testdata/wire/*/frame.bin from the fixtures table")

// fixtureDir holds one directory per reader case. Each directory has:
//
//	frame.bin  the raw bytes fed to a Reader, generated from fixtures below
//	           by `go test ./wire -run TestReaderFixtures -update`;
//	want.json  the expected outcome, written by hand, as a fixtureWant.
const fixtureDir = "../testdata/wire"

// purchase is a real ATTEMPT_PURCHASE payload.
const purchase = `{"product_id":"iphone15","user_id":"user_123"}`

// fixtures describes how every frame.bin is built, so the files are
// reproducible and a reviewer can see what each one is meant to contain.
var fixtures = []struct {
	name  string
	build func() []byte
}{
	{"good", func() []byte {
		return wire.AppendFrame(nil, wire.TypePurchase, []byte(purchase))
	}},
	{"pipelined", func() []byte {
		b := wire.AppendFrame(nil, wire.TypePurchase, []byte(purchase))
		return wire.AppendFrame(b, wire.TypePurchase, []byte(`{"product_id":"pixel9","user_id":"user_456"}`))
	}},
	{"short-header", func() []byte {
		// Type and two of the four length bytes.
		return wire.AppendFrame(nil, wire.TypePurchase, []byte(purchase))[:3]
	}},
	{"short-payload", func() []byte {
		// A whole header announcing 46 bytes, followed by only 20.
		return wire.AppendFrame(nil, wire.TypePurchase, []byte(purchase))[:wire.HeaderSize+20]
	}},
	{"header-only", func() []byte {
		// A whole header announcing 46 bytes and no payload at all.
		return wire.AppendFrame(nil, wire.TypePurchase, []byte(purchase))[:wire.HeaderSize]
	}},
	{"too-large", func() []byte {
		// Length 0xFFFFFFFF followed by a few bytes the reader must not touch.
		return append([]byte{byte(wire.TypePurchase), 0xff, 0xff, 0xff, 0xff}, "junk"...)
	}},
	{"empty-payload", func() []byte {
		// A valid frame with a zero length, then an ordinary frame.
		b := wire.AppendFrame(nil, wire.TypePurchase, nil)
		return wire.AppendFrame(b, wire.TypePurchase, []byte(purchase))
	}},
	{"empty-stream", func() []byte {
		return []byte{}
	}},
}

// fixtureWant is the format of want.json.
type fixtureWant struct {
	// Max is the reader's payload limit; 0 selects DefaultMaxPayload.
	Max int `json:"max,omitempty"`
	// Frames are the frames Next must return, in order.
	Frames []fixtureFrame `json:"frames"`
	// Err is the text of the sentinel error Next returns after the frames
	// ("EOF", "unexpected EOF" or "frame too large"); it is checked with
	// errors.Is against the sentinel of that name.
	Err string `json:"err"`
	// TooLarge, when set, is the *FrameTooLargeError the reader must report.
	TooLarge *wire.FrameTooLargeError `json:"too_large,omitempty"`
}

type fixtureFrame struct {
	Type    wire.Type `json:"type"`
	Payload string    `json:"payload"`
}

// sentinels maps fixtureWant.Err to the error it names.
var sentinels = map[string]error{
	io.EOF.Error():                io.EOF,
	io.ErrUnexpectedEOF.Error():   io.ErrUnexpectedEOF,
	wire.ErrFrameTooLarge.Error(): wire.ErrFrameTooLarge,
}

func TestReaderFixtures(t *testing.T) {
	if *update {
		for _, fx := range fixtures {
			dir := filepath.Join(fixtureDir, fx.name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "frame.bin"), fx.build(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Every directory must be described by the table, so that -update
	// can regenerate all of them.
	known := make(map[string]bool)
	for _, fx := range fixtures {
		known[fx.name] = true
	}
	entries, err := os.ReadDir(fixtureDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !known[e.Name()] {
			t.Errorf("%s/%s has no entry in the fixtures table", fixtureDir, e.Name())
		}
	}

	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := filepath.Join(fixtureDir, fx.name)
			data, err := os.ReadFile(filepath.Join(dir, "frame.bin"))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(data, fx.build()) {
				t.Fatalf("frame.bin is stale: have % x, fixtures table builds % x; run go test ./wire -run TestReaderFixtures -update", data, fx.build())
			}
			want := readWant(t, filepath.Join(dir, "want.json"))

			r := wire.NewReader(bytes.NewReader(data), want.Max)
			for i, wf := range want.Frames {
				f, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: Next: %v", i, err)
				}
				if f.Type != wf.Type || string(f.Payload) != wf.Payload {
					t.Fatalf("frame %d: got {%v %q}, want {%v %q}", i, f.Type, f.Payload, wf.Type, wf.Payload)
				}
			}
			_, err = r.Next()
			if !errors.Is(err, sentinels[want.Err]) {
				t.Fatalf("after %d frames: Next error = %v, want %s", len(want.Frames), err, want.Err)
			}

			var tle *wire.FrameTooLargeError
			if got := errors.As(err, &tle); got != (want.TooLarge != nil) {
				t.Fatalf("errors.As(%v, *FrameTooLargeError) = %v, want %v", err, got, want.TooLarge != nil)
			}
			if want.TooLarge == nil {
				return
			}
			if *tle != *want.TooLarge {
				t.Fatalf("FrameTooLargeError = %+v, want %+v", *tle, *want.TooLarge)
			}
			// The header was not consumed: asking again gives the same answer.
			if _, err2 := r.Next(); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("second Next error = %v, want %v", err2, err)
			}
		})
	}
}

func readWant(t *testing.T, path string) fixtureWant {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var want fixtureWant
	if err := dec.Decode(&want); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if _, ok := sentinels[want.Err]; !ok {
		t.Fatalf("%s: unknown err %q", path, want.Err)
	}
	return want
}

func TestAppendHeader(t *testing.T) {
	got := wire.AppendHeader([]byte("x"), wire.TypePurchase, 0x01020304)
	if want := []byte{'x', 0x01, 0x01, 0x02, 0x03, 0x04}; !bytes.Equal(got, want) {
		t.Fatalf("AppendHeader = % x, want % x", got, want)
	}
	got = wire.AppendFrame(nil, wire.TypePurchaseResponse, []byte("hi"))
	if want := []byte{0x81, 0, 0, 0, 2, 'h', 'i'}; !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame = % x, want % x", got, want)
	}
}

// roundTripFrames covers every type byte class and payload sizes around
// the Writer's 16 KiB buffer and the default limit.
var roundTripFrames = []wire.Frame{
	{Type: wire.TypePurchase, Payload: []byte(purchase)},
	{Type: wire.TypePurchaseResponse, Payload: []byte(`{"status":"SUCCESS","remaining_stock":42}`)},
	{Type: 0x00, Payload: nil},
	{Type: 0x7f, Payload: []byte{0, 0xff, '\n'}},
	{Type: 0xff, Payload: bytes.Repeat([]byte("a"), 20<<10)},
	{Type: 0x80, Payload: bytes.Repeat([]byte("b"), wire.DefaultMaxPayload)},
	{Type: wire.TypePurchase, Payload: []byte("{}")},
}

func TestFrameRoundTrip(t *testing.T) {
	var appended []byte
	for _, f := range roundTripFrames {
		appended = wire.AppendFrame(appended, f.Type, f.Payload)
	}

	// Read it back whole and through readers that return short or
	// unusual reads, which exercise the partial-header and partial-payload paths.
	readers := []struct {
		name string
		r    func() io.Reader
	}{
		{"whole", func() io.Reader { return bytes.NewReader(appended) }},
		{"one-byte", func() io.Reader { return iotest.OneByteReader(bytes.NewReader(appended)) }},
		{"half", func() io.Reader { return iotest.HalfReader(bytes.NewReader(appended)) }},
		{"data-err", func() io.Reader { return iotest.DataErrReader(bytes.NewReader(appended)) }},
	}
	for _, rc := range readers {
		t.Run(rc.name, func(t *testing.T) {
			r := wire.NewReader(rc.r(), 0)
			for i, want := range roundTripFrames {
				f, err := r.Next()
				if err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
				if f.Type != want.Type || !bytes.Equal(f.Payload, want.Payload) {
					t.Fatalf("frame %d: got type %v len %d, want type %v len %d", i, f.Type, len(f.Payload), want.Type, len(want.Payload))
				}
			}
			if _, err := r.Next(); err != io.EOF {
				t.Fatalf("Next at end = %v, want io.EOF", err)
			}
		})
	}
}

func TestAppendResponseFrame(t *testing.T) {
	r := wire.Response{Status: "SUCCESS", Has: wire.FieldRemaining, RemainingStock: 41}
	prefix := []byte("earlier frames")
	got := wire.AppendResponseFrame(bytes.Clone(prefix), wire.TypePurchaseResponse, &r)
	want := wire.AppendFrame(bytes.Clone(prefix), wire.TypePurchaseResponse, wire.AppendResponse(nil, &r))
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendResponseFrame = %q, want %q", got, want)
	}
}

func TestReaderPropagatesErrors(t *testing.T) {
	boom := errors.New("boom")
	frame := wire.AppendFrame(nil, wire.TypePurchase, []byte(purchase))
	for _, tt := range []struct {
		name string
		data []byte
	}{
		{"before-header", nil},
		{"in-header", frame[:2]},
		{"in-payload", frame[:wire.HeaderSize+3]},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := wire.NewReader(io.MultiReader(bytes.NewReader(tt.data), iotest.ErrReader(boom)), 0)
			if _, err := r.Next(); !errors.Is(err, boom) {
				t.Fatalf("Next = %v, want %v", err, boom)
			}
		})
	}
}

func TestReaderLimit(t *testing.T) {
	for _, tt := range []struct {
		name    string
		max     int // passed to NewReader
		limit   int // the limit the reader must apply
		payload int
	}{
		{"at-limit", 16, 16, 16},
		{"above-limit", 16, 16, 17},
		{"zero-max-is-default", 0, wire.DefaultMaxPayload, wire.DefaultMaxPayload},
		{"zero-max-above-default", 0, wire.DefaultMaxPayload, wire.DefaultMaxPayload + 1},
		{"negative-max-is-default", -1, wire.DefaultMaxPayload, wire.DefaultMaxPayload + 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data := wire.AppendFrame(nil, wire.TypePurchase, make([]byte, tt.payload))
			r := wire.NewReader(bytes.NewReader(data), tt.max)
			f, err := r.Next()
			if tt.payload <= tt.limit {
				if err != nil || len(f.Payload) != tt.payload {
					t.Fatalf("Next = %d bytes, %v; want %d bytes, nil", len(f.Payload), err, tt.payload)
				}
				return
			}
			var tle *wire.FrameTooLargeError
			if !errors.As(err, &tle) {
				t.Fatalf("Next error = %v, want *FrameTooLargeError", err)
			}
			want := wire.FrameTooLargeError{Type: wire.TypePurchase, Length: uint32(tt.payload), Max: tt.limit}
			if *tle != want {
				t.Fatalf("FrameTooLargeError = %+v, want %+v", *tle, want)
			}
			if !errors.Is(err, wire.ErrFrameTooLarge) {
				t.Fatalf("errors.Is(%v, ErrFrameTooLarge) = false", err)
			}
			if f.Payload != nil {
				t.Fatalf("payload returned with error: %d bytes", len(f.Payload))
			}
		})
	}
}

func TestFrameTooLargeErrorMessage(t *testing.T) {
	err := &wire.FrameTooLargeError{Type: wire.TypePurchase, Length: 0xFFFFFFFF, Max: 16}
	if got, want := err.Error(), "frame too large: 4294967295 bytes, limit 16"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// TestReaderTooLargeDoesNotAllocate checks that a header announcing 4 GiB
// is refused without allocating for it. The error value itself is the only
// allocation Next may make.
func TestReaderTooLargeDoesNotAllocate(t *testing.T) {
	data := append([]byte{byte(wire.TypePurchase)}, 0xff, 0xff, 0xff, 0xff)
	r := wire.NewReader(bytes.NewReader(data), 0) // allocates the bufio buffer
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		_, err = r.Next()
	})
	if !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Fatalf("Next = %v, want ErrFrameTooLarge", err)
	}
	if allocs > 1 {
		t.Fatalf("Next allocated %v times for an oversized header, want at most 1 (the error)", allocs)
	}
}

// repeatReader returns buf over and over and never ends. Because buf holds
// whole frames, a Reader over it sees an endless well-formed stream.
type repeatReader struct {
	buf []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.buf[r.off:])
		n += c
		r.off = (r.off + c) % len(r.buf)
	}
	return n, nil
}

func TestReaderNextDoesNotAllocate(t *testing.T) {
	var stream []byte
	for range 64 {
		stream = wire.AppendFrame(stream, wire.TypePurchase, []byte(purchase))
	}
	r := wire.NewReader(&repeatReader{buf: stream}, 0)
	if _, err := r.Next(); err != nil { // warm the payload buffer
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		f, err := r.Next()
		if err != nil || string(f.Payload) != purchase {
			t.Fatalf("Next = %q, %v", f.Payload, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Next allocated %v times per frame in the steady state, want 0", allocs)
	}
}

func TestReaderBuffered(t *testing.T) {
	var stream []byte
	stream = wire.AppendFrame(stream, wire.TypePurchase, []byte(purchase))
	stream = wire.AppendFrame(stream, wire.TypePurchase, []byte(purchase))
	r := wire.NewReader(bytes.NewReader(stream), 0)
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if got, want := r.Buffered(), len(stream)/2; got != want {
		t.Fatalf("Buffered after one of two frames = %d, want %d", got, want)
	}
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if got := r.Buffered(); got != 0 {
		t.Fatalf("Buffered after both frames = %d, want 0", got)
	}
}

func TestType(t *testing.T) {
	for _, tt := range []struct {
		t          wire.Type
		response   wire.Type
		isResponse bool
		str        string
	}{
		{wire.TypePurchase, wire.TypePurchaseResponse, false, "ATTEMPT_PURCHASE"},
		{wire.TypePurchaseResponse, wire.TypePurchaseResponse, true, "ATTEMPT_PURCHASE_RESPONSE"},
		{0x00, 0x80, false, "0x00"},
		{0x02, 0x82, false, "QUERY_STOCK"},
		{0x83, 0x83, true, "PING_RESPONSE"},
		{0x04, 0x84, false, "0x04"},
		{0x10, 0x90, false, "CONFIRM_ORDER"},
		{0x91, 0x91, true, "CANCEL_ORDER_RESPONSE"},
		{0x20, 0xa0, false, "JOIN_QUEUE"},
		{0xa1, 0xa1, true, "QUEUE_STATUS_RESPONSE"},
		{0x7f, 0xff, false, "0x7f"},
		{0x80, 0x80, true, "0x80"},
		{0xff, 0xff, true, "0xff"},
	} {
		t.Run(tt.str, func(t *testing.T) {
			if got := tt.t.Response(); got != tt.response {
				t.Errorf("Response() = %v, want %v", got, tt.response)
			}
			if got := tt.t.IsResponse(); got != tt.isResponse {
				t.Errorf("IsResponse() = %v, want %v", got, tt.isResponse)
			}
			if !tt.t.Response().IsResponse() {
				t.Errorf("Response().IsResponse() = false")
			}
			if got := tt.t.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
	if wire.TypePurchaseResponse != 0x81 || wire.ResponseBit != 0x80 {
		t.Fatalf("TypePurchaseResponse = %#x, ResponseBit = %#x; want 0x81, 0x80", byte(wire.TypePurchaseResponse), byte(wire.ResponseBit))
	}
}

// readFrameBins returns every fixture stream, for fuzz seeds.
func readFrameBins(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtureDir, "*", "frame.bin"))
	if err != nil {
		tb.Fatal(err)
	}
	if len(paths) == 0 {
		tb.Fatalf("no fixtures in %s", fixtureDir)
	}
	var bins [][]byte
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		bins = append(bins, b)
	}
	return bins
}

// be32 decodes a header's length field, for tests that inspect raw bytes.
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
