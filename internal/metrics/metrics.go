// Package metrics is flashsale's Prometheus instrumentation: the
// collectors, the /metrics handler, and the small nil-safe methods the
// listeners call on every request and connection.
//
// STUB: the API below is fixed; the implementation with
// prometheus/client_golang is being written.
package metrics

import (
	"net/http"
	"time"
)

// Protocols, for the protocol label.
const (
	TLV  = "tlv"
	HTTP = "http"
)

// Metrics holds the collectors of one server. A nil *Metrics is valid and
// records nothing.
type Metrics struct{}

// Purchase records one purchase answered over protocol with status (the
// wire status string, e.g. "SUCCESS", "SOLD_OUT", "ERROR") and, for ERROR,
// its code; elapsed is from the request's arrival to its answer.
func (m *Metrics) Purchase(protocol, status, code string, elapsed time.Duration) {}

// ConnOpened records a client connection accepted over protocol.
func (m *Metrics) ConnOpened(protocol string) {}

// ConnClosed records a client connection over protocol that closed.
func (m *Metrics) ConnClosed(protocol string) {}

// Handler serves the Prometheus exposition.
func (m *Metrics) Handler() http.Handler { return http.NotFoundHandler() }
