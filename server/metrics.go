package server

import (
	"net/http"
	"time"
)

// Metrics records what the server answers. The server defines it, so any
// recorder can be given; package internal/metrics implements it with
// Prometheus. A nil Config.Metrics records nothing.
type Metrics interface {
	// Purchase records one purchase answered over protocol (ProtocolTLV,
	// ProtocolHTTP) with status (the wire status, e.g. "SOLD_OUT") and,
	// for ERROR, its code; elapsed is from the request's arrival to its
	// answer.
	Purchase(protocol, status, code string, elapsed time.Duration)
	// ConnOpened records a client connection accepted over protocol.
	ConnOpened(protocol string)
	// ConnClosed records a client connection over protocol that closed.
	ConnClosed(protocol string)
	// Handler serves the figures at GET /metrics; nil serves nothing there.
	Handler() http.Handler
}

// Protocols, as Metrics and the logs name them.
const (
	ProtocolTLV  = "tlv"
	ProtocolHTTP = "http"
)

// noMetrics is the Metrics of a Config without one: it records nothing.
type noMetrics struct{}

func (noMetrics) Purchase(string, string, string, time.Duration) {}
func (noMetrics) ConnOpened(string)                              {}
func (noMetrics) ConnClosed(string)                              {}
func (noMetrics) Handler() http.Handler                          { return nil }
