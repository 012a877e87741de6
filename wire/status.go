package wire

// Status is the outcome of a request, as a client sees it: the "status"
// member of every answer. It lives here, with the codec, so that both sides
// of the protocol (the engine that decides it, and the client and load
// generator that read it) share one table without importing the engine.
type Status uint8

// Statuses. The zero value is StatusError so that a forgotten assignment can
// never read as a sale.
const (
	StatusError             Status = iota
	StatusSuccess                  // sold; Remaining, OrderID, Quantity
	StatusSoldOut                  // nothing left
	StatusInsufficientStock        // fewer units left (Remaining) than asked
	StatusAlreadyPurchased         // the customer holds Held units of Limit
	StatusNotStarted               // the sale opens at Start
	StatusEnded                    // the sale closed at End
	StatusOK                       // a query's answer
	StatusPong                     // a PING's answer
	StatusUnauthorized             // the customer token is missing, expired or forged; Message says which
	StatusRateLimited              // too many attempts; retry after RetryAfter
	StatusReserved                 // reserved until ExpiresAt; Remaining, OrderID, Quantity
	StatusPaid                     // a reservation confirmed (now, or by an earlier confirm)
	StatusExpired                  // the reservation lapsed before it was confirmed; its units went back
	StatusReleased                 // the reservation was cancelled; its units went back
	StatusAlreadyPaid              // a cancel of a reservation already paid: nothing changed
	StatusWaiting                  // in a waiting room, not yet admitted; Ticket, Position
	StatusAdmitted                 // admitted by a waiting room; Admission
)

// statusText is the one table between statuses and their wire strings.
var statusText = [...]string{
	StatusError:             "ERROR",
	StatusSuccess:           "SUCCESS",
	StatusSoldOut:           "SOLD_OUT",
	StatusInsufficientStock: "INSUFFICIENT_STOCK",
	StatusAlreadyPurchased:  "ALREADY_PURCHASED",
	StatusNotStarted:        "NOT_STARTED",
	StatusEnded:             "ENDED",
	StatusOK:                "OK",
	StatusPong:              "PONG",
	StatusUnauthorized:      "UNAUTHORIZED",
	StatusRateLimited:       "RATE_LIMITED",
	StatusReserved:          "RESERVED",
	StatusPaid:              "PAID",
	StatusExpired:           "EXPIRED",
	StatusReleased:          "RELEASED",
	StatusAlreadyPaid:       "ALREADY_PAID",
	StatusWaiting:           "WAITING",
	StatusAdmitted:          "ADMITTED",
}

// Statuses lists every status, for reports.
func Statuses() []Status {
	all := make([]Status, len(statusText))
	for i := range all {
		all[i] = Status(i)
	}
	return all
}

// String returns the wire form of s.
func (s Status) String() string {
	if int(s) < len(statusText) {
		return statusText[s]
	}
	return statusText[StatusError]
}

// ParseStatus maps a wire string back to its Status.
func ParseStatus(s string) (Status, bool) {
	for i, t := range statusText {
		if t == s {
			return Status(i), true
		}
	}
	return StatusError, false
}
