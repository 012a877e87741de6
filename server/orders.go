package server

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/flashsale/flashsale/engine"
	"github.com/flashsale/flashsale/wire"
)

// Confirm and cancel of reservations (see engine.Confirm): CONFIRM_ORDER
// and CANCEL_ORDER frames, and POST /v1/orders/confirm and /cancel with the
// same JSON body, answered alike.

// settleOrder runs the slot's confirm or cancel and answers it.
func (c *conn) settleOrder(sl *slot) {
	res := c.srv.settle(sl.typ, engineOrder(&sl.order))
	c.srv.logFailure(c.event, res, sl.order.ProductID)
	c.answer(sl, res)
}

// settle confirms (TypeConfirm) or cancels req, within the request
// timeout.
func (s *Server) settle(t wire.Type, req engine.OrderRequest) engine.Result {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.RequestTimeout)
	defer cancel()
	if t == wire.TypeConfirm {
		return s.eng.Confirm(ctx, req)
	}
	return s.eng.Cancel(ctx, req)
}

// engineOrder is the engine's request for a decoded order payload.
func engineOrder(o *wire.OrderRequest) engine.OrderRequest {
	return engine.OrderRequest{
		ProductID: o.ProductID, UserID: o.UserID, OrderID: o.OrderID,
		Token: o.Token, Expires: o.Expires, JWT: o.JWT,
	}
}

// httpOrder is POST /v1/orders/confirm (t TypeConfirm) or /cancel: the
// body is the order payload; Authorization: Bearer carries the customer's
// JWT.
func (s *Server) httpOrder(t wire.Type) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var resp wire.Response
		if s.orderOverHTTP(t, w, r, &resp) {
			writeAnswerStatus(w, &resp, orderStatus(t, &resp))
			return
		}
		writeAnswer(w, &resp)
	}
}

// orderOverHTTP decodes r's order and settles it, and sets resp to the
// answer; false when the request was refused before it was settled.
func (s *Server) orderOverHTTP(t wire.Type, w http.ResponseWriter, r *http.Request, resp *wire.Response) bool {
	buf := bodyBuffers.Get().(*[]byte)
	defer putBody(buf)
	body, ok := s.readRequestBody(w, r, buf, resp)
	if !ok {
		return false
	}
	var o wire.OrderRequest
	err := wire.DecodeOrder(body, &o)
	req := engineOrder(&o)
	if err == nil {
		req.JWT, err = bearerJWT(r, req.JWT)
	}
	if err != nil {
		*resp = wire.Response{Status: wire.StatusError.String(), Code: engine.CodeInvalidRequest, Error: err.Error()}
		return false
	}
	res := s.settle(t, req)
	s.logFailure(connOf(r).log.WithLevel, res, req.ProductID)
	resultResponse(resp, res)
	return true
}

// bearerJWT is the JWT of r's Authorization: Bearer header, or jwt (the
// body's) when there is none; the two may not differ.
func bearerJWT(r *http.Request, jwt string) (string, error) {
	auth := r.Header.Get("Authorization")
	if len(auth) <= len("Bearer ") || !strings.EqualFold(auth[:len("Bearer ")], "Bearer ") {
		return jwt, nil
	}
	bearer := auth[len("Bearer "):]
	if jwt != "" && jwt != bearer {
		return "", errors.New("Authorization and jwt differ")
	}
	return bearer, nil
}

// orderStatus is the HTTP status of a confirm's or cancel's answer: as
// httpStatus says, but a confirm that finds the reservation cancelled is a
// conflict, not a success.
func orderStatus(t wire.Type, r *wire.Response) int {
	if t == wire.TypeConfirm && r.Status == wire.StatusReleased.String() {
		return http.StatusConflict
	}
	return statusOf(r)
}
