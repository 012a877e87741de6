// Package dashboard is the operator's live view of a sale: one HTML page
// (embedded, no build step, nothing fetched from the network), a JSON
// snapshot of every product, and a server-sent events stream fed by the
// engine's pub/sub channels.
//
// It is a package of its own, beside the TLV and HTTP listeners in server,
// because it is a different concern from serving purchases: it reads, it
// never sells, and what it must guard against is a flood of sale events
// and slow browsers, not a flood of buyers. One Redis subscription per
// channel (engine.EventChannel and engine.ControlChannel) is shared by all
// the browsers a handler serves, and it runs only while at least one
// browser is connected. Sales are added up per product and sent a few times
// per second, so 100,000 sales a second cost a browser four small messages
// a second, not 100,000. Those messages carry rates only: the figures a
// card shows (stock, units sold, orders, customers, a held product's
// reservations) are the product's status, read once a tick while it sells
// and after a reservation is paid or released, so that they always come
// from one reading and agree with each other and with the snapshot. A
// browser that reads too slowly loses messages (its buffer is bounded) and
// is told to resync from the snapshot instead of holding the others back.
//
// The handler answers under /dashboard (the page at /dashboard/, the
// snapshot at /dashboard/api/products, the stream at /dashboard/events) and
// also answers / with the page, so a listener may route a browser's GET /
// to it.
package dashboard
