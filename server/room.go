package server

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// The waiting room (see engine.Join): JOIN_QUEUE and QUEUE_STATUS frames,
// POST /v1/queue/join with the same JSON body and GET /v1/queue/status
// with its fields as query parameters, answered alike. A ticket's status
// is read from Redis at most once per PollInterval on each server: polling
// faster gets the last answer again, so hammering gains nothing and costs
// Redis nothing.

// DefaultPollInterval is Config.PollInterval's default.
const DefaultPollInterval = 250 * time.Millisecond

// joinQueue runs the slot's join and answers it.
func (c *conn) joinQueue(sl *slot) {
	a := c.srv.join(engineJoin(&sl.join))
	c.srv.logFailure(c.event, a.Result, sl.join.ProductID)
	c.answerRoom(sl, a)
}

// queueStatus runs the slot's poll and answers it.
func (c *conn) queueStatus(sl *slot) {
	a := c.srv.poll(sl.status.ProductID, sl.status.Ticket)
	c.srv.logFailure(c.event, a.Result, sl.status.ProductID)
	c.answerRoom(sl, a)
}

// answerRoom sets the slot's response from a and marks it ready.
func (c *conn) answerRoom(sl *slot, a engine.RoomAnswer) {
	roomResponse(&sl.resp, a)
	c.ready(sl)
}

// roomResponse sets r to the answer for a, for TLV and HTTP alike.
func roomResponse(r *wire.Response, a engine.RoomAnswer) {
	resultResponse(r, a.Result)
	switch a.Status {
	case wire.StatusWaiting:
		r.Ticket = a.Ticket
		if a.Position >= 0 {
			r.Has, r.Position = r.Has|wire.FieldPosition, a.Position
		}
		if a.ETA >= 0 {
			r.Has, r.ETAMS = r.Has|wire.FieldETA, a.ETA.Milliseconds()
		}
	case wire.StatusAdmitted:
		r.Has, r.ExpiresAt = r.Has|wire.FieldExpiresAt, a.AdmissionExpires.UnixMilli()
		r.Ticket, r.Admission = a.Ticket, a.Admission
	}
}

// join runs req within the request timeout.
func (s *Server) join(req engine.JoinRequest) engine.RoomAnswer {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	return s.eng.Join(ctx, req)
}

// poll answers the holder of ticket, from the cache when it was asked
// within PollInterval (an admission too: once no unit is left, an
// admitted customer is told SOLD_OUT).
func (s *Server) poll(product, ticket string) engine.RoomAnswer {
	if a, ok := s.polls.get(product, ticket, s.cfg.PollInterval); ok {
		s.eng.CachedPoll()
		return a
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	a := s.eng.Poll(ctx, product, ticket)
	if a.Status != wire.StatusError {
		s.polls.put(product, ticket, a)
	}
	return a
}

// engineJoin is the engine's request for a decoded JOIN_QUEUE payload.
func engineJoin(j *wire.JoinRequest) engine.JoinRequest {
	return engine.JoinRequest{ProductID: j.ProductID, UserID: j.UserID, Token: j.Token, Expires: j.Expires, JWT: j.JWT}
}

// httpJoin is POST /v1/queue/join: the body is the JOIN_QUEUE payload;
// Authorization: Bearer carries the customer's JWT.
func (s *Server) httpJoin(w http.ResponseWriter, r *http.Request) {
	var resp wire.Response
	buf := bodyBuffers.Get().(*[]byte)
	defer putBody(buf)
	body, ok := s.readRequestBody(w, r, buf, &resp)
	if !ok {
		writeAnswer(w, &resp)
		return
	}
	var j wire.JoinRequest
	err := wire.DecodeJoin(body, &j)
	req := engineJoin(&j)
	if err == nil {
		req.JWT, err = bearerJWT(r, req.JWT)
	}
	if err != nil {
		writeAnswer(w, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest, Error: err.Error()})
		return
	}
	a := s.join(req)
	s.logFailure(connOf(r).log.WithLevel, a.Result, req.ProductID)
	roomResponse(&resp, a)
	writeAnswer(w, &resp)
}

// httpQueueStatus is GET /v1/queue/status?product_id=…&ticket=….
func (s *Server) httpQueueStatus(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for name := range q {
		if name != "product_id" && name != "ticket" {
			writeAnswer(w, &wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest,
				Error: "unknown parameter " + name + " (the parameters are product_id, ticket)"})
			return
		}
	}
	a := s.poll(q.Get("product_id"), q.Get("ticket"))
	s.logFailure(connOf(r).log.WithLevel, a.Result, q.Get("product_id"))
	var resp wire.Response
	roomResponse(&resp, a)
	writeAnswer(w, &resp)
}

// pollCacheMax bounds the tickets a pollCache remembers: past it, it
// starts afresh.
const pollCacheMax = 1 << 17

// pollCache keeps each ticket's last answer. The zero value is ready.
type pollCache struct {
	mu sync.Mutex // protects the following field
	m  map[pollKey]polled
}

type pollKey struct{ product, ticket string }

type polled struct {
	a  engine.RoomAnswer
	at time.Time
}

// get is ticket's last answer if it is fresh: asked within every.
func (c *pollCache) get(product, ticket string, every time.Duration) (engine.RoomAnswer, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.m[pollKey{product, ticket}]
	if !ok || time.Since(p.at) >= every {
		return engine.RoomAnswer{}, false
	}
	p.a.Waited = 0 // counted once, when it admitted
	return p.a, true
}

func (c *pollCache) put(product, ticket string, a engine.RoomAnswer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= pollCacheMax {
		c.m = make(map[pollKey]polled)
	}
	// The strings of a decoded request alias its slot's payload, which the
	// slot's next request overwrites: the cache keeps copies.
	ticket = strings.Clone(ticket)
	a.Ticket = ticket
	c.m[pollKey{strings.Clone(product), ticket}] = polled{a: a, at: time.Now()}
}
