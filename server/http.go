package server

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// The HTTP side of the listener: connections the accept loop sniffed as
// HTTP are served by a standard net/http Server, through chanListener.
// Purchases take the same engine path as TLV ones (PurchaseAsync, so
// batching, the sold-out cache, rate limits and durability apply) and get
// the same JSON answer, with an HTTP status from httpStatus.

// httpStatus is the one table from outcomes to HTTP statuses: the wire
// status, or for ERROR its code. An outcome missing here is a 500.
var httpStatus = map[string]int{
	wire.StatusSuccess.String():           http.StatusOK,
	wire.StatusOK.String():                http.StatusOK,
	wire.StatusPong.String():              http.StatusOK,
	wire.StatusSoldOut.String():           http.StatusConflict,
	wire.StatusInsufficientStock.String(): http.StatusConflict,
	wire.StatusAlreadyPurchased.String():  http.StatusConflict,
	wire.StatusNotStarted.String():        http.StatusTooEarly,
	wire.StatusEnded.String():             http.StatusGone,
	wire.StatusRateLimited.String():       http.StatusTooManyRequests,
	wire.StatusUnauthorized.String():      http.StatusUnauthorized,
	wire.StatusReserved.String():          http.StatusOK,
	wire.StatusPaid.String():              http.StatusOK,
	// RELEASED is 200 for a cancel; a confirm of a cancelled reservation
	// answers 409 (see confirmStatus).
	wire.StatusReleased.String():    http.StatusOK,
	wire.StatusExpired.String():     http.StatusConflict,
	wire.StatusAlreadyPaid.String(): http.StatusConflict,
	engine.CodeForbidden:            http.StatusForbidden,
	wire.StatusWaiting.String():     http.StatusOK,
	wire.StatusAdmitted.String():    http.StatusOK,
	engine.CodeNotAdmitted:          http.StatusForbidden,
	engine.CodeUnknownTicket:        http.StatusForbidden,
	engine.CodeNoRoom:               http.StatusNotFound,
	engine.CodeInvalidRequest:       http.StatusBadRequest,
	engine.CodeRequestReused:        http.StatusBadRequest,
	engine.CodeUnknownType:          http.StatusBadRequest,
	engine.CodeUnknownProduct:       http.StatusNotFound,
	engine.CodeUnknownOrder:         http.StatusNotFound,
	engine.CodeFrameTooLarge:        http.StatusRequestEntityTooLarge,
	engine.CodeUnavailable:          http.StatusServiceUnavailable,
	engine.CodeStoreFull:            http.StatusServiceUnavailable,
	engine.CodeBusy:                 http.StatusServiceUnavailable,
	// The sale is recorded but not yet as durable as asked: like
	// UNAVAILABLE, the client retries with the same request_id to learn it.
	engine.CodeNotDurable: http.StatusServiceUnavailable,
	engine.CodeInternal:   http.StatusInternalServerError,
}

// statusOf is the HTTP status of an answer, from httpStatus.
func statusOf(r *wire.Response) int {
	key := r.Status
	if key == wire.StatusError.String() {
		key = r.Code
	}
	if code, ok := httpStatus[key]; ok {
		return code
	}
	return http.StatusInternalServerError
}

// httpMaxHeaderBytes bounds an HTTP request's header block: a purchase
// needs a few hundred bytes (a JWT included).
const httpMaxHeaderBytes = 8 << 10

// newHTTPServer returns the net/http Server for s, with limits as strict
// as the TLV side's: a request must arrive whole within FrameTimeout, its
// body is capped at MaxPayload, an idle keep-alive connection closes after
// IdleTimeout, and an answer must be written within WriteTimeout after
// the engine's RequestTimeout.
//
// Request contexts end when the drain begins, so that streams (the
// dashboard's server-sent events) stop and Shutdown need not wait for
// them; purchases and queries do not depend on them.
func (s *Server) newHTTPServer() *http.Server {
	return &http.Server{
		BaseContext:       func(net.Listener) context.Context { return s.drainCtx },
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: s.cfg.FrameTimeout,
		ReadTimeout:       s.cfg.FrameTimeout,
		WriteTimeout:      s.cfg.RequestTimeout + s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          log.New(httpErrorLog{s.log}, "", 0),
		ConnContext: func(ctx context.Context, nc net.Conn) context.Context {
			hc := &httpConn{log: s.log.With().Str("remote", nc.RemoteAddr().String()).
				Uint64("conn_id", s.nextID.Add(1)).Str("protocol", ProtocolHTTP).Logger()}
			return context.WithValue(ctx, httpConnKey{}, hc)
		},
	}
}

// httpErrorLog sends net/http's own complaints to the server's logger.
type httpErrorLog struct{ log zerolog.Logger }

func (l httpErrorLog) Write(p []byte) (int, error) {
	l.log.Warn().Str("protocol", ProtocolHTTP).Msg(strings.TrimSpace(string(p)))
	return len(p), nil
}

// httpConn is the state of one HTTP connection: its ConnRate bucket and
// its logger.
type httpConn struct {
	mu      sync.Mutex
	limiter bucket
	log     zerolog.Logger
}

type httpConnKey struct{}

// connOf returns the state of the connection r came on.
func connOf(r *http.Request) *httpConn {
	if hc, ok := r.Context().Value(httpConnKey{}).(*httpConn); ok {
		return hc
	}
	return &httpConn{}
}

// serveHTTP hands a sniffed connection to the HTTP server. It stays
// counted against MaxConns until net/http closes it.
func (s *Server) serveHTTP(pc *sniffedConn) {
	s.cfg.Metrics.ConnOpened(ProtocolHTTP)
	pc.closed = func() {
		s.cfg.Metrics.ConnClosed(ProtocolHTTP)
		s.release()
	}
	if !s.httpLn.hand(pc) {
		linger(pc) // the server is shutting down
	}
}

// chanListener is the net.Listener the HTTP server accepts from: the
// accept loops hand it the connections they sniffed as HTTP.
type chanListener struct {
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{conns: make(chan net.Conn), done: make(chan struct{})}
}

// hand gives nc to Accept; it reports false once the listener is closed.
func (l *chanListener) hand(nc net.Conn) bool {
	select {
	case l.conns <- nc:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case nc := <-l.conns:
		return nc, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return sniffedAddr{} }

// sniffedAddr is chanListener's address: its connections come from the
// server's real listeners.
type sniffedAddr struct{}

func (sniffedAddr) Network() string { return "tcp" }
func (sniffedAddr) String() string  { return "sniffed" }

// httpHandler routes the HTTP API. Purchases, the hot path, skip the mux.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /{$}", s.httpPurchase)
	mux.HandleFunc("GET /{$}", s.httpRoot)
	mux.HandleFunc("POST /v1/purchase", s.httpPurchase)
	mux.HandleFunc("POST /v1/orders/confirm", s.httpOrder(wire.TypeConfirm))
	mux.HandleFunc("POST /v1/orders/cancel", s.httpOrder(wire.TypeCancel))
	mux.HandleFunc("POST /v1/queue/join", s.httpJoin)
	mux.HandleFunc("GET /v1/queue/status", s.httpQueueStatus)
	mux.HandleFunc("GET /v1/products", s.httpProducts)
	mux.HandleFunc("GET /v1/products/{id}", s.httpProduct)
	mux.HandleFunc("GET /healthz", s.httpHealthz)
	mux.HandleFunc("GET /readyz", s.httpReadyz)
	if h := s.cfg.Metrics.Handler(); h != nil {
		mux.Handle("GET /metrics", h)
	}
	if d := s.cfg.Dashboard; d != nil {
		// /dashboard redirects to /dashboard/, so the page's relative links
		// resolve below it.
		mux.Handle("/dashboard/", http.StripPrefix("/dashboard", d))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && (r.URL.Path == "/" || r.URL.Path == "/v1/purchase") {
			s.httpPurchase(w, r)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			// The mux's own 404, 405 (with Allow) or redirect, with a JSON body.
			mux.ServeHTTP(&jsonErrorWriter{ResponseWriter: w}, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// jsonErrorWriter turns the mux's plain-text errors into JSON answers
// while keeping their status and headers (Allow, Location).
type jsonErrorWriter struct {
	http.ResponseWriter
	wrote bool
}

func (w *jsonErrorWriter) WriteHeader(code int) {
	if code < 400 {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.wrote = true
	msg := "no such endpoint"
	if code == http.StatusMethodNotAllowed {
		msg = "method not allowed; see the Allow header"
	}
	body := wire.AppendResponse(nil, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest, Error: msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.ResponseWriter.WriteHeader(code)
	w.ResponseWriter.Write(body)
}

func (w *jsonErrorWriter) Write(p []byte) (int, error) {
	if w.wrote {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// bodyBuffers holds request and answer buffers between HTTP requests.
var bodyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 1<<10); return &b }}

// putBody returns a buffer to bodyBuffers unless it grew large.
func putBody(b *[]byte) {
	if cap(*b) <= maxOutBuffer {
		*b = (*b)[:0]
		bodyBuffers.Put(b)
	}
}

// writeAnswer writes r as the JSON answer, with its status from
// httpStatus and, for RATE_LIMITED, a Retry-After in whole seconds
// (rounded up), for UNAVAILABLE and STORE_FULL one of a second.
func writeAnswer(w http.ResponseWriter, r *wire.Response) { writeAnswerStatus(w, r, statusOf(r)) }

// writeAnswerStatus is writeAnswer with the HTTP status code.
func writeAnswerStatus(w http.ResponseWriter, r *wire.Response, code int) {
	buf := bodyBuffers.Get().(*[]byte)
	defer putBody(buf)
	*buf = wire.AppendResponse((*buf)[:0], r)
	h := w.Header()
	h["Content-Type"] = jsonContentType
	switch {
	case r.Has&wire.FieldRetryAfter != 0:
		h.Set("Retry-After", strconv.FormatInt((r.RetryAfterMS+999)/1000, 10))
	case r.Code == engine.CodeUnavailable, r.Code == engine.CodeStoreFull:
		h["Retry-After"] = retryUnavailable
	}
	w.WriteHeader(code)
	w.Write(*buf)
}

var jsonContentType = []string{"application/json"}

// retryUnavailable is the Retry-After of an UNAVAILABLE or STORE_FULL
// answer, in seconds: Redis refused or did not answer, and may in a second.
var retryUnavailable = []string{"1"}

// writeResult writes the answer for res.
func writeResult(w http.ResponseWriter, res engine.Result) {
	var r wire.Response
	resultResponse(&r, res)
	writeAnswer(w, &r)
}

// httpPurchase is POST / and POST /v1/purchase: the body is the
// ATTEMPT_PURCHASE JSON payload, whatever its Content-Type (the seed's
// load test sends text/plain). Idempotency-Key is an alias of request_id,
// and Authorization: Bearer carries the customer's JWT.
func (s *Server) httpPurchase(w http.ResponseWriter, r *http.Request) {
	var arrived time.Time
	m := s.cfg.Metrics
	_, quiet := m.(noMetrics)
	if !quiet {
		arrived = time.Now()
	}
	var resp wire.Response
	s.purchaseOverHTTP(w, r, &resp)
	writeAnswer(w, &resp)
	if !quiet {
		m.Purchase(ProtocolHTTP, resp.Status, resp.Code, time.Since(arrived))
	}
}

// purchaseOverHTTP runs the purchase of r and sets resp to its answer.
func (s *Server) purchaseOverHTTP(w http.ResponseWriter, r *http.Request, resp *wire.Response) {
	fail := func(code, msg string) {
		*resp = wire.Response{Status: wire.StatusError.String(), Code: code, Error: msg}
	}
	buf := bodyBuffers.Get().(*[]byte)
	defer putBody(buf)
	body, ok := s.readRequestBody(w, r, buf, resp)
	if !ok {
		return
	}
	var pr wire.PurchaseRequest
	if err := wire.DecodePurchase(body, &pr); err != nil {
		fail(engine.CodeInvalidRequest, err.Error())
		return
	}
	req := engineRequest(&pr)
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		if req.RequestID != "" && req.RequestID != key {
			fail(engine.CodeInvalidRequest, "Idempotency-Key and request_id differ")
			return
		}
		req.RequestID = key
	}
	var err error
	if req.JWT, err = bearerJWT(r, req.JWT); err != nil {
		fail(engine.CodeInvalidRequest, err.Error())
		return
	}
	hc := connOf(r)
	hc.mu.Lock()
	wait := hc.limiter.take(s.cfg.ConnRate, time.Now())
	hc.mu.Unlock()
	if wait > 0 {
		resultResponse(resp, engine.Result{Status: wire.StatusRateLimited, RetryAfter: wait})
		return
	}
	done := make(chan engine.Result, 1)
	s.eng.PurchaseAsync(req, time.Now().Add(s.cfg.RequestTimeout), func(res engine.Result) { done <- res })
	// The answer comes by RequestTimeout whatever the client does; body
	// stays untouched until then, as req's strings are views of it.
	res := <-done
	s.logFailure(hc.log.WithLevel, res, req.ProductID)
	resultResponse(resp, res)
}

// readRequestBody reads r's body, at most MaxPayload bytes, into *buf, or
// sets resp to the ERROR that says why it could not.
func (s *Server) readRequestBody(w http.ResponseWriter, r *http.Request, buf *[]byte, resp *wire.Response) ([]byte, bool) {
	body, err := readBody(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxPayload)), *buf)
	*buf = body
	if err == nil {
		return body, true
	}
	*resp = wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest, Error: "reading the body: " + err.Error()}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		resp.Code, resp.Error = engine.CodeFrameTooLarge, "body too large: limit "+strconv.Itoa(s.cfg.MaxPayload)+" bytes"
	}
	return nil, false
}

// readBody appends all of rd to buf.
func readBody(rd io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// httpProduct is GET /v1/products/{id}: the QUERY_STOCK answer.
func (s *Server) httpProduct(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	st, err := s.eng.Status(ctx, r.PathValue("id"))
	if err != nil {
		res := engine.Fail(err)
		s.logFailure(connOf(r).log.WithLevel, res, r.PathValue("id"))
		writeResult(w, res)
		return
	}
	var resp wire.Response
	stockResponse(&resp, st)
	writeAnswer(w, &resp)
}

// maxListed bounds GET /v1/products.
const maxListed = 1000

// httpProducts is GET /v1/products: every product's QUERY_STOCK answer
// with its product_id, sorted by id, at most maxListed of them (or
// ?limit=N, if fewer), and "truncated":true when there were more:
//
//	{"products":[{"product_id":"iphone15","status":"OK","remaining_stock":3,…}],"truncated":false}
func (s *Server) httpProducts(w http.ResponseWriter, r *http.Request) {
	limit := maxListed
	if q := r.URL.Query().Get("limit"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 1 {
			writeAnswer(w, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest, Error: "limit must be a positive integer"})
			return
		}
		limit = min(n, maxListed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	ids, err := s.eng.Products(ctx)
	if err != nil {
		writeResult(w, engine.Fail(err))
		return
	}
	truncated := len(ids) > limit
	ids = ids[:min(len(ids), limit)]
	out := append(make([]byte, 0, 64+128*len(ids)), `{"products":[`...)
	first := true
	var resp wire.Response
	for _, id := range ids {
		st, err := s.eng.Status(ctx, id)
		if errors.Is(err, engine.ErrUnknownProduct) {
			continue // deleted since the scan
		}
		if err != nil {
			res := engine.Fail(err)
			s.logFailure(connOf(r).log.WithLevel, res, id)
			writeResult(w, res)
			return
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		stockResponse(&resp, st)
		out = wire.AppendString(append(out, `{"product_id":`...), id)
		out = append(out, ',')
		// The answer's object, without its opening brace.
		out = append(out, wire.AppendResponse(nil, &resp)[1:]...)
	}
	out = strconv.AppendBool(append(out, `],"truncated":`...), truncated)
	out = append(out, '}')
	w.Header()["Content-Type"] = jsonContentType
	w.Write(out)
}

// httpHealthz is GET /healthz: 200 while the process serves.
func (s *Server) httpHealthz(w http.ResponseWriter, r *http.Request) {
	writeAnswer(w, &wire.Response{Status: wire.StatusOK.String()})
}

// httpReadyz is GET /readyz: 200 when Redis answers a PING now, 503
// while it does not, while it refuses purchases (out of memory, loading, a
// replica: the reason is the answer's error), or while the server drains. The scripts are loaded
// before the server starts, and again by the transport whenever Redis
// lost them, so a Redis that answers can run them.
func (s *Server) httpReadyz(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		writeAnswer(w, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeUnavailable, Error: "draining"})
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), min(s.cfg.RequestTimeout, healthInterval))
	defer cancel()
	if err := s.eng.Ping(ctx); err != nil || !s.redisUp.Load() {
		reason := "redis unavailable"
		if err != nil {
			s.redisUp.Store(false)
			if errors.Is(err, engine.ErrRefused) {
				reason = err.Error() // the cause and the operator's next step
			}
		}
		writeAnswer(w, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeUnavailable, Error: reason, Redis: "down"})
		return
	}
	writeAnswer(w, &wire.Response{Status: wire.StatusOK.String(), Redis: "up"})
}

// httpRoot is GET /: the dashboard's page for a browser, a 405 for
// anyone else.
func (s *Server) httpRoot(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Dashboard != nil && prefersHTML(r.Header.Get("Accept")) {
		s.cfg.Dashboard.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Allow", http.MethodPost)
	writeAnswerStatus(w, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest,
		Error: "POST / takes a purchase; GET /v1/products lists the products"}, http.StatusMethodNotAllowed)
}

// prefersHTML reports whether an Accept header ranks text/html above
// JSON, as browsers' do; "*/*" alone (curl, most clients) does not.
func prefersHTML(accept string) bool {
	html, json := -1.0, -1.0
	for part := range strings.SplitSeq(accept, ",") {
		typ, params, _ := strings.Cut(part, ";")
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		switch strings.ToLower(strings.TrimSpace(typ)) {
		case "text/html":
			html = max(html, q)
		case "application/json":
			json = max(json, q)
		}
	}
	return html > 0 && html >= json
}

// appendHTTPRefusal appends a whole HTTP/1.1 503 response carrying r that
// closes its connection: the answer past MaxConns on an HTTP-only port.
func appendHTTPRefusal(dst []byte, r *wire.Response) []byte {
	body := wire.AppendResponse(nil, r)
	dst = append(dst, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(len(body)), 10)
	dst = append(dst, "\r\n\r\n"...)
	return append(dst, body...)
}
