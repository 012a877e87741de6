package faultproxy

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"github.com/rs/zerolog/log"
)

// Directions of a toxic: upstream is what the server sends to Redis,
// downstream what Redis answers.
const (
	Upstream   = "upstream"
	Downstream = "downstream"
)

// Proxy is a toxiproxy proxy from Addr (loopback) to an upstream address.
type Proxy struct {
	// Addr is where the proxy listens: give it to the server under test.
	Addr string
	p    *toxiproxy.Proxy
}

// quiet silences zerolog's global logger, which some toxics (bandwidth)
// log to at trace level whatever the proxy's own logger; flashsale itself
// never logs through it.
var quiet sync.Once

// Start starts a proxy to upstream on a free loopback port, stopped when
// the test ends.
func Start(t testing.TB, upstream string) *Proxy {
	t.Helper()
	quiet.Do(func() { log.Logger = zerolog.Nop() })
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "redis", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("faultproxy: start a proxy to %s: %v", upstream, err)
	}
	t.Cleanup(p.Stop)
	return &Proxy{Addr: p.Listen, p: p}
}

// Toxic is one fault on one direction of the traffic, as toxiproxy names
// it: Type is a toxiproxy toxic type and Attributes its attributes.
type Toxic struct {
	Name       string           `json:"name"`
	Type       string           `json:"type"`
	Stream     string           `json:"stream"`
	Toxicity   float32          `json:"toxicity"`
	Attributes map[string]int64 `json:"attributes"`
}

func toxic(typ, stream string, attrs map[string]int64) Toxic {
	return Toxic{Name: typ + "_" + stream, Type: typ, Stream: stream, Toxicity: 1, Attributes: attrs}
}

// Latency delays every chunk on stream by latency ± jitter.
func Latency(stream string, latency, jitter time.Duration) Toxic {
	return toxic("latency", stream, map[string]int64{"latency": latency.Milliseconds(), "jitter": jitter.Milliseconds()})
}

// Bandwidth caps stream at kbPerSec KB/s.
func Bandwidth(stream string, kbPerSec int64) Toxic {
	return toxic("bandwidth", stream, map[string]int64{"rate": kbPerSec})
}

// ResetPeer closes every connection after after of its first data on
// stream, dropping that data and all after it: with a TCP RST for
// connections opened while the toxic is in place (toxiproxy sets their
// linger to 0), a plain close for those already open.
func ResetPeer(stream string, after time.Duration) Toxic {
	return toxic("reset_peer", stream, map[string]int64{"timeout": after.Milliseconds()})
}

// LimitData closes every connection once n more bytes have passed on
// stream, cutting whatever is in flight.
func LimitData(stream string, n int64) Toxic {
	return toxic("limit_data", stream, map[string]int64{"bytes": n})
}

// Blackhole drops everything on stream and never closes the connection;
// removing it closes the connections it held.
func Blackhole(stream string) Toxic {
	return toxic("timeout", stream, map[string]int64{"timeout": 0})
}

// Add adds the toxics to every connection of the proxy, current and new.
func (p *Proxy) Add(t testing.TB, toxics ...Toxic) {
	t.Helper()
	for _, x := range toxics {
		body, err := json.Marshal(x)
		if err != nil {
			t.Fatalf("faultproxy: %v", err)
		}
		if _, err := p.p.Toxics.AddToxicJson(bytes.NewReader(body)); err != nil {
			t.Fatalf("faultproxy: add %s: %v", x.Name, err)
		}
	}
}

// Remove removes the toxics; a toxic not there fails the test.
func (p *Proxy) Remove(t testing.TB, toxics ...Toxic) {
	t.Helper()
	for _, x := range toxics {
		if err := p.p.Toxics.RemoveToxic(context.Background(), x.Name); err != nil {
			t.Fatalf("faultproxy: remove %s: %v", x.Name, err)
		}
	}
}
