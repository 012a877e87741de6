package engine

// Status is the outcome of a request, as a client sees it.
type Status uint8

// Statuses. The zero value is StatusError so that a forgotten assignment can
// never read as a sale.
const (
	StatusError Status = iota
	StatusSuccess
	StatusSoldOut
)

// statusText is the one table between statuses and their wire strings.
var statusText = [...]string{
	StatusError:   "ERROR",
	StatusSuccess: "SUCCESS",
	StatusSoldOut: "SOLD_OUT",
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

// Error codes sent with an ERROR status, so clients can branch without
// parsing the message.
const (
	CodeInvalidRequest = "INVALID_REQUEST" // the payload or its ids are unacceptable
	CodeUnknownProduct = "UNKNOWN_PRODUCT" // the product was never initialised
	CodeUnknownType    = "UNKNOWN_TYPE"    // the frame type is not a request we serve
	CodeFrameTooLarge  = "FRAME_TOO_LARGE" // the frame is above the size limit; the connection closes
	CodeUnavailable    = "UNAVAILABLE"     // Redis did not answer in time; the outcome is unknown only if the script may have run
	CodeInternal       = "INTERNAL"        // a bug or a corrupt product; see the server log
)
