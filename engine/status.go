package engine

// State is where a product's sale stands.
type State string

// States, as QUERY_STOCK and admin status report them.
const (
	StateUpcoming State = "UPCOMING" // before the window's start
	StateOpen     State = "OPEN"     // selling
	StateSoldOut  State = "SOLD_OUT" // inside the window, nothing left
	StateEnded    State = "ENDED"    // after the window's end
)

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
	CodeForbidden      = "FORBIDDEN"         // the order is another customer's
	CodeNotAdmitted    = "NOT_ADMITTED"      // the product has a waiting room and the purchase no valid admission
	CodeNoRoom         = "NO_ROOM"           // the product has no waiting room
	CodeUnknownTicket  = "UNKNOWN_TICKET"    // the waiting-room ticket is not one this room issued
	CodeBusy           = "BUSY"              // the server is at its connection cap; the connection closes
	CodeNotDurable     = "NOT_DURABLE"       // the sale ran but --durability was not reached in time
	CodeUnavailable    = "UNAVAILABLE"       // Redis did not answer in time; the outcome is unknown only if the script may have run
	CodeStoreFull      = "STORE_FULL"        // Redis is out of memory; nothing was recorded; retry later
	CodeInternal       = "INTERNAL"          // a bug or a corrupt product; see the server log
)
