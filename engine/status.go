package engine

// Status is the outcome of a request, as a client sees it.
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
}

// Statuses lists every status, for reports.
func Statuses() []Status {
	all := make([]Status, len(statusText))
	for i := range all {
		all[i] = Status(i)
	}
	return all
}

// State is where a product's sale stands.
type State string

// States, as QUERY_STOCK and admin status report them.
const (
	StateUpcoming State = "UPCOMING" // before the window's start
	StateOpen     State = "OPEN"     // selling
	StateSoldOut  State = "SOLD_OUT" // inside the window, nothing left
	StateEnded    State = "ENDED"    // after the window's end
)

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

// Error codes sent with an ERROR status, so clients can branch without
// parsing the message.
const (
	CodeInvalidRequest = "INVALID_REQUEST"   // the payload or its ids are unacceptable
	CodeUnknownProduct = "UNKNOWN_PRODUCT"   // the product was never initialised
	CodeUnknownType    = "UNKNOWN_TYPE"      // the frame type is not a request we serve
	CodeFrameTooLarge  = "FRAME_TOO_LARGE"   // the frame is above the size limit; the connection closes
	CodeRequestReused  = "REQUEST_ID_REUSED" // a request_id came back with a different payload
	CodeOrderReleased  = "ORDER_RELEASED"    // a request_id came back after its order was released
	CodeUnknownOrder   = "UNKNOWN_ORDER"     // no sale has that order id
	CodeBusy           = "BUSY"              // the server is at its connection cap; the connection closes
	CodeNotDurable     = "NOT_DURABLE"       // the sale ran but --durability was not reached in time
	CodeUnavailable    = "UNAVAILABLE"       // Redis did not answer in time; the outcome is unknown only if the script may have run
	CodeInternal       = "INTERNAL"          // a bug or a corrupt product; see the server log
)
