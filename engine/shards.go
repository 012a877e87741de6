package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// A product spread over shards ("admin init --shards K ID N") keeps its
// units in K shards, each a product-like key set under its own hash tag
// {ID#j}, so that the shards land on different slots and, in a cluster, on
// different masters. The product's own meta ({ID}) is its directory: the
// shard ids, the units it was given, its limit and window. To clients and
// admin commands it stays one product:
//
//   - Every customer has a home shard (FNV-1a of the user id, modulo K)
//     that holds their per-customer record, request records and rate
//     limiter, and every purchase of theirs runs the ordinary purchase
//     script there: the per-customer limit and request_id retries are
//     exact, and the purchase stays one atomic script.
//   - When the home shard cannot serve a purchase (SOLD_OUT or
//     INSUFFICIENT_STOCK), the server moves units to it from the fullest
//     shard with a transfer: a debit in the source recorded under a
//     transfer id (transfer_debit.lua), a credit in the target that refuses
//     a second credit of that id (transfer_credit.lua), then the debit is
//     settled (transfer_settle.lua). A server that dies between the steps
//     leaves a pending debit that any server finishes when it finds every
//     shard empty, and that admin verify --repair finishes.
//   - SOLD_OUT is answered only when every shard is empty and no transfer
//     is pending; INSUFFICIENT_STOCK only when all shards together hold
//     fewer units than asked.
//   - A SUCCESS's remaining stock is the product's: the home shard's exact
//     figure plus the other shards' as this server last read them, never 0
//     while a shard holds units (see shards_stock.go).
//   - Admin commands act on the product (see shards_admin.go): a restock
//     goes to the emptiest shards as transfers out of the directory,
//     release finds the order in its customer's home shard, reset resets
//     every shard, buyers lists every shard's.
//
// Round trips: a purchase the home shard serves costs one script call, as
// for any product. One it cannot serve costs, per refill round, one peek of
// every shard and of the directory (in parallel: one round trip), a debit,
// a credit and the
// retried purchase (the settle runs meanwhile): four more round trips. A
// further round happens only when other customers bought the moved units
// first, so rounds are bounded by the units sold meanwhile, and by
// maxRefills; a purchase still unserved then fails with ErrUnavailable,
// never with SOLD_OUT.

// MaxShards caps the shards of one product.
const MaxShards = 256

// maxRefills bounds the refill rounds of one purchase.
const maxRefills = 32

// shardCacheTTL is how long a server trusts the shard list it read.
const shardCacheTTL = 2 * time.Second

// ErrTransferFailed: a transfer between shards could not complete (its
// target shard is missing).
var ErrTransferFailed = errors.New("transfer between shards failed")

// TransfersOut is the key of a shard's pending debits: transfer id →
// "target-shard-id units".
func (k Keys) TransfersOut() string { return k.prefix + "xfer_out" }

// TransfersIn is the key of a shard's credits: transfer id → units.
func (k Keys) TransfersIn() string { return k.prefix + "xfer_in" }

// shardEntry is a cached shard list.
type shardEntry struct {
	ids        []string // nil: not sharded
	until      time.Time
	refreshing *atomic.Bool // one refresh at a time once stale
}

// shardCache holds the shard lists read recently, by product id. A stale
// list is still used while one background read refreshes it, so that the
// purchases in flight when it expires do not all read it again.
type shardCache struct{ m sync.Map }

// get returns the cached shard list of id, and whether it is stale.
func (c *shardCache) get(id string, now time.Time) (ids []string, stale, ok bool) {
	v, ok := c.m.Load(id)
	if !ok {
		return nil, false, false
	}
	e := v.(shardEntry)
	return e.ids, now.After(e.until), true
}

func (c *shardCache) put(id string, ids []string, now time.Time) {
	c.m.Store(id, shardEntry{ids: ids, until: now.Add(shardCacheTTL), refreshing: new(atomic.Bool)})
}

// claimRefresh reports whether the caller is the one to refresh id's list.
func (c *shardCache) claimRefresh(id string) bool {
	v, ok := c.m.Load(id)
	return ok && v.(shardEntry).refreshing.CompareAndSwap(false, true)
}

// shardDir is a sharded product's directory.
type shardDir struct {
	ids       []string // nil: not sharded
	initial   int64
	restocked int64
}

func (e *Engine) readShardDir(ctx context.Context, id string) (shardDir, error) {
	v, err := e.eval(ctx, shardDirScript, KeysFor(id))
	if err != nil {
		return shardDir{}, fmt.Errorf("shards of %s: %w", id, err)
	}
	var list string
	var d shardDir
	if err := scanReply(v, &list, &d.initial, &d.restocked); err != nil {
		return shardDir{}, fmt.Errorf("shards of %s: unexpected reply: %w", id, err)
	}
	if list != "" {
		d.ids = strings.Split(list, ",")
	}
	e.shards.put(id, d.ids, e.now())
	return d, nil
}

// Shards returns the shard ids of product id, or nil when it is not
// sharded. A fulfilment reader follows the orders stream of every shard
// (KeysFor(shard).Orders); each shard's order ids are its own stream's.
func (e *Engine) Shards(ctx context.Context, id string) ([]string, error) {
	if err := ValidateProductID(id); err != nil {
		return nil, err
	}
	d, err := e.readShardDir(ctx, id)
	return d.ids, err
}

// HomeShard is the index, among k shards, of the shard holding user's
// per-customer record.
func HomeShard(user string, k int) int {
	h := fnv.New32a()
	h.Write([]byte(user))
	return int(h.Sum32() % uint32(k))
}

// InitSharded creates or re-creates product id with units spread evenly
// over k shards (2 to MaxShards), on distinct slots and, when the Redis is
// a cluster, spread evenly over its masters. Settings are Init's; the
// per-user limit is per customer across all shards.
func (e *Engine) InitSharded(ctx context.Context, id string, units int64, k int, opts ...InitOption) error {
	s, err := initSettings(id, units, opts)
	if err != nil {
		return err
	}
	if k < 2 || k > MaxShards {
		return invalidError(fmt.Sprintf("shards must be between 2 and %d", MaxShards))
	}
	if strings.Contains(id, ",") { // the directory lists the shards comma-separated
		return invalidError("the id of a product spread over shards may not contain a comma")
	}
	used, err := e.prepareInit(ctx, id, s, true)
	if err != nil {
		return err
	}
	ids, err := e.pickShards(ctx, id, k)
	if err != nil {
		return fmt.Errorf("init %s: %w", id, err)
	}
	for i, sid := range ids {
		share := shareOf(units, k, i)
		sk := KeysFor(sid)
		if _, err := e.eval(ctx, shardClearScript, sk); err != nil {
			return fmt.Errorf("init %s: shard %s: %w", id, sid, err)
		}
		c, err := e.initOf(ctx, sid, id, share, s)
		if err != nil {
			return fmt.Errorf("init %s: shard %s: %w", id, sid, err)
		}
		used = used.plus(c)
	}
	c, err := e.evalChecked(ctx, shardBaseScript, id,
		strings.Join(ids, ","), units, s.PerUserLimit, msOrEmpty(s.Start), msOrEmpty(s.End), ControlChannel, id, forceArg(s.Force))
	if err != nil {
		// A sale landed on the plain product since prepareInit read it:
		// it stays plain, and the new shards, which no directory names,
		// go.
		if _, derr := (shardedProduct{e, id, shardDir{ids: ids}}).dropShards(ctx, true); derr != nil {
			err = errors.Join(err, derr)
		}
		return fmt.Errorf("init %s: %w", id, err)
	}
	used = used.plus(c)
	e.shards.put(id, ids, e.now())
	s.report(used)
	return nil
}

// shareOf is shard i's share when units are spread evenly over k shards
// (the first units%k get one more).
func shareOf(units int64, k, i int) int64 {
	share := units / int64(k)
	if int64(i) < units%int64(k) {
		share++
	}
	return share
}

// pickShards chooses k shard ids ID#j on distinct slots: the first that
// come, or, on a cluster, the lowest j of each master in turn, so that the
// masters get k/masters shards each (one more for some).
func (e *Engine) pickShards(ctx context.Context, id string, k int) ([]string, error) {
	byMaster := map[string][]string{}
	seen := map[int]bool{}
	for j := 0; j < 64*k && len(seen) < 16*k; j++ {
		sid := id + "#" + strconv.Itoa(j)
		slot, master, err := e.redis.SlotOf(ctx, KeysFor(sid).Stock)
		if err != nil {
			return nil, err
		}
		if seen[slot] {
			continue
		}
		seen[slot] = true
		byMaster[master] = append(byMaster[master], sid)
	}
	masters := make([]string, 0, len(byMaster))
	for m := range byMaster {
		masters = append(masters, m)
	}
	sort.Strings(masters)
	var ids []string
	for round := 0; len(ids) < k; round++ {
		took := false
		for _, m := range masters {
			if round < len(byMaster[m]) && len(ids) < k {
				ids = append(ids, byMaster[m][round])
				took = true
			}
		}
		if !took {
			return nil, fmt.Errorf("only %d distinct slots for %d shards", len(ids), k)
		}
	}
	return ids, nil
}

// cachedShards is the shard list of a product this server read lately; a
// stale one is refreshed in the background.
func (e *Engine) cachedShards(id string) []string {
	ids, stale, ok := e.shards.get(id, e.now())
	if ok && stale && e.shards.claimRefresh(id) {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), shardCacheTTL)
			defer cancel()
			if _, err := e.readShardDir(ctx, id); err != nil {
				e.shards.m.Delete(id) // the next purchase reads it again
			}
		}()
	}
	return ids
}

// firstArgs are the keys and arguments of req's first attempt: args, on
// the product, or on its home shard among ids when it is sharded.
func (e *Engine) firstArgs(req *Request, ids []string, args []any) []any {
	if ids == nil {
		return args
	}
	return e.purchaseArgs(req, ids[HomeShard(req.UserID, len(ids))], true)
}

// firstOutcome decodes the reply to req's first attempt. Only a product's
// own SOLD_OUT is final enough for the sold-out cache; a shard's is not.
func (e *Engine) firstOutcome(req *Request, ids []string, v any, err error) Result {
	if ids == nil {
		return e.purchaseOutcome(req, v, err)
	}
	return e.decodeOutcome(req, v, err)
}

// answered reports whether res, the outcome of req's first attempt, is
// its answer; a sharded SUCCESS then carries the product's remaining
// stock. Else followUp finds the answer.
func (e *Engine) answered(req *Request, ids []string, res *Result) bool {
	switch {
	case errors.Is(res.Err, ErrUnknownProduct):
		return false
	case ids == nil:
		return true
	case needsRefill(*res):
		return false
	}
	return e.quickRemaining(req.ProductID, ids, HomeShard(req.UserID, len(ids)), res)
}

// followUp finds req's answer after its first attempt res was not: the
// product is routed again if Redis did not know it, else its home shard
// is refilled as needed.
func (e *Engine) followUp(ctx context.Context, req *Request, ids []string, res Result) Result {
	if errors.Is(res.Err, ErrUnknownProduct) {
		return e.reroute(ctx, req, ids != nil, res)
	}
	return e.afterHome(ctx, req, ids, HomeShard(req.UserID, len(ids)), res)
}

// reroute runs req again after Redis did not know where it ran (res):
// the product, or its home shard (onShard), as this server last saw its
// layout. The product may have been spread over shards, re-initialised
// or deleted since: its directory is read once, and req runs on the
// layout found. An unknown product stays res; a shard missing from its
// own directory is not looked for twice.
func (e *Engine) reroute(ctx context.Context, req *Request, onShard bool, res Result) Result {
	d, err := e.readShardDir(ctx, req.ProductID)
	switch {
	case err != nil && onShard:
		return Fail(fmt.Errorf("purchase %s: %w", req.ProductID, err))
	case err != nil || d.ids == nil && !onShard:
		return res
	case d.ids == nil:
		v, err := e.redis.Eval(ctx, purchaseScript, e.purchaseArgs(req, req.ProductID, true)...)
		return e.purchaseOutcome(req, v, err)
	}
	home := HomeShard(req.UserID, len(d.ids))
	v, err := e.redis.Eval(ctx, purchaseScript, e.purchaseArgs(req, d.ids[home], true)...)
	if res = e.decodeOutcome(req, v, err); errors.Is(res.Err, ErrUnknownProduct) {
		return res
	}
	return e.afterHome(ctx, req, d.ids, home, res)
}

func needsRefill(r Result) bool {
	return r.Status == wire.StatusSoldOut || r.Status == wire.StatusInsufficientStock
}

// afterHome refills the home shard while it cannot serve req and units
// remain elsewhere, retrying the purchase after each refill. A SUCCESS
// carries the product's remaining stock (see wideRemaining).
func (e *Engine) afterHome(ctx context.Context, req *Request, ids []string, home int, res Result) Result {
	for range maxRefills {
		if !needsRefill(res) {
			return e.wideRemaining(ctx, req.ProductID, ids, home, res)
		}
		total, moved, err := e.refill(ctx, req.ProductID, ids, home, req.Quantity)
		switch {
		case err != nil:
			return Fail(fmt.Errorf("purchase %s: %w", req.ProductID, err))
		case !moved && total == 0:
			if e.soldOut != nil {
				e.soldOut.mark(req.ProductID, e.now())
			}
			return Result{Status: wire.StatusSoldOut}
		case !moved:
			return Result{Status: wire.StatusInsufficientStock, Remaining: total}
		}
		// Not rated again: a retry within one purchase.
		v, err := e.redis.Eval(ctx, purchaseScript, e.purchaseArgs(req, ids[home], false)...)
		res = e.decodeOutcome(req, v, err)
	}
	if !needsRefill(res) {
		return e.wideRemaining(ctx, req.ProductID, ids, home, res)
	}
	return Fail(fmt.Errorf("purchase %s: home shard not refilled after %d rounds: %w", req.ProductID, maxRefills, ErrUnavailable))
}

// peek is one shard's stock, pending transfers out, credits, and
// reservations expired but not yet released.
type peek struct {
	stock, pending, credits, expired int64
	err                              error
}

func (e *Engine) peekAll(ctx context.Context, ids []string) ([]peek, error) {
	out := make([]peek, len(ids))
	var wg sync.WaitGroup
	for i, sid := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := e.eval(ctx, shardPeekScript, KeysFor(sid))
			if err == nil {
				p := &out[i]
				err = scanReply(v, &p.stock, &p.pending, &p.credits, &p.expired)
			}
			if err != nil {
				out[i].err = fmt.Errorf("shard %s: %w", sid, err)
			}
		}()
	}
	wg.Wait()
	for _, p := range out {
		if p.err != nil {
			return nil, p.err
		}
	}
	return out, nil
}

// refill moves units into shard home from the fullest other shard, or
// finishes pending transfers when every shard is empty. It returns the
// units all shards held at the peek, and whether a retry may now succeed.
func (e *Engine) refill(ctx context.Context, id string, ids []string, home int, want int64) (total int64, moved bool, err error) {
	// The directory is read too: its transfers out are a restock's parts
	// (see shardedRestock), and it holds no stock.
	all := append(ids[:len(ids):len(ids)], id)
	peeks, err := e.peekAll(ctx, all)
	if err != nil {
		return 0, false, err
	}
	e.stocks.note(id, peeks[:len(ids)], e.now())
	src, pending, expired := -1, int64(0), int64(0)
	for i, p := range peeks {
		total += max(p.stock, 0)
		pending += p.pending
		expired += p.expired
		if i != home && p.stock > 0 && (src < 0 || p.stock > peeks[src].stock) {
			src = i
		}
	}
	switch {
	case peeks[home].stock >= want:
		return total, true, nil // refilled by someone else meanwhile
	case src >= 0 && total >= want:
		n, err := e.transfer(ctx, ids[src], ids[home], want, false)
		e.stocks.took(id, src, n)
		return total, true, err
	case pending > 0:
		// Units in transit: a transfer under way, or one whose server died.
		// Finishing it is safe either way (its credit happens once); then
		// look again.
		_, err := e.finishTransfers(ctx, id, ids)
		return total, true, err
	case expired > 0:
		// Units held by expired reservations, in shards whose purchases
		// have not released them (a shard's purchase releases its own
		// before it judges stock, but units elsewhere reach this customer
		// only by a transfer, which takes stock alone). Sweep those shards
		// and look again: SOLD_OUT is never answered while an expired
		// reservation holds units anywhere. The peek stays read-only and
		// the sweep runs only on this path, the one that would otherwise
		// answer SOLD_OUT or INSUFFICIENT_STOCK.
		return total, true, e.sweepExpired(ctx, id, ids, peeks)
	}
	// Too little left, by a reading of the shards one by one. A unit moved
	// while they were read could have been missed (read in its target
	// before the credit, in its source after the settle), so a second
	// reading must agree: a credit between the two shows in that shard's
	// credits count, and any other unit is seen where it is.
	again, err := e.peekAll(ctx, all)
	if err != nil {
		return 0, false, err
	}
	for i := range again {
		if again[i] != peeks[i] {
			return total, true, nil
		}
	}
	return total, false, nil
}

// sweepExpired sweeps the shards ids of product id whose peek found
// expired reservations.
func (e *Engine) sweepExpired(ctx context.Context, id string, ids []string, peeks []peek) error {
	var all Swept
	for i, sid := range ids {
		if peeks[i].expired == 0 {
			continue
		}
		sw, err := e.sweepOf(ctx, sid, id)
		if err != nil {
			return err
		}
		all = all.plus(sw)
	}
	e.heardSwept(all)
	return nil
}

// transfer moves units from shard src to shard dst (see transfer_debit.lua:
// half of src's stock or want if more, or with exact want) and returns how
// many it took out of src.
func (e *Engine) transfer(ctx context.Context, src, dst string, want int64, exact bool) (int64, error) {
	tid := newTransferID()
	mode := ""
	if exact {
		mode = "exact"
	}
	units, err := e.evalInts(ctx, debitScript, KeysFor(src), tid, dst, want, mode)
	if err != nil || len(units) != 1 {
		return 0, fmt.Errorf("transfer %s from %s: %w", tid, src, errors.Join(err, ErrTransferFailed))
	}
	if units[0] == 0 {
		return 0, nil // emptied meanwhile: the caller's next round looks again
	}
	if err := e.crashPoint(tid); err != nil {
		return units[0], err
	}
	return units[0], e.completeTransfer(ctx, pendingTransfer{src: src, dst: dst, tid: tid, units: units[0]})
}

// completeTransfer credits transfer p to its target (once) and settles its
// debit in its source.
func (e *Engine) completeTransfer(ctx context.Context, p pendingTransfer) error {
	kind := ""
	if p.restock {
		kind = "restock"
	}
	n, err := e.evalInt(ctx, creditScript, KeysFor(p.dst), p.tid, p.units, kind, ControlChannel, p.src)
	if err != nil {
		return fmt.Errorf("transfer %s to %s: %w", p.tid, p.dst, err)
	}
	if n == replyUnknownProduct {
		return fmt.Errorf("transfer %s to %s: %w: no such shard", p.tid, p.dst, ErrTransferFailed)
	}
	if _, err := e.eval(ctx, settleScript, KeysFor(p.src), p.tid); err != nil {
		return fmt.Errorf("transfer %s: settle in %s: %w", p.tid, p.src, err)
	}
	return nil
}

// crashPoint runs the transfer hook, if a test set one, for transfer tid.
func (e *Engine) crashPoint(tid string) error {
	if hook := e.transferHook.Load(); hook != nil {
		return (*hook)(tid)
	}
	return nil
}

func newTransferID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(time.Now().UnixMilli(), 10) + "-" + hex.EncodeToString(b[:])
}

// pendingTransfer is a debit not yet settled.
type pendingTransfer struct {
	src, dst, tid string
	units         int64
	credited      bool
	restock       bool // a restock's part: src is the product's directory
}

// what names the transfer in a discrepancy.
func (p pendingTransfer) what() string {
	if p.restock {
		return fmt.Sprintf("restock part %s of %d units to %s", p.tid, p.units, p.dst)
	}
	return fmt.Sprintf("transfer %s of %d units from %s to %s", p.tid, p.units, p.src, p.dst)
}

// pendingTransfers lists the debits not yet settled of every shard ids of
// product id, and the restock parts its directory has not settled.
func (e *Engine) pendingTransfers(ctx context.Context, id string, ids []string) ([]pendingTransfer, error) {
	var out []pendingTransfer
	for _, sid := range append(ids[:len(ids):len(ids)], id) {
		v, err := e.eval(ctx, readOutScript, KeysFor(sid), "")
		var m map[string]string
		if err == nil {
			m, err = replyStringMap(v)
		}
		if err != nil {
			return nil, fmt.Errorf("transfers of %s: %w", sid, err)
		}
		for tid, v := range m {
			dst, n, ok := strings.Cut(v, " ")
			units, err := strconv.ParseInt(n, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("transfer %s of %s: bad record %q", tid, sid, v)
			}
			credit, err := e.eval(ctx, readInScript, KeysFor(dst), tid)
			if err != nil {
				return nil, fmt.Errorf("transfer %s to %s: %w", tid, dst, err)
			}
			credited := credit != nil // nil: no credit of tid
			if c, ok := credit.([]byte); ok {
				credited = len(c) > 0
			}
			out = append(out, pendingTransfer{src: sid, dst: dst, tid: tid, units: units, credited: credited, restock: sid == id})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].tid < out[j].tid })
	return out, nil
}

// finishTransfers completes every pending transfer among shards ids of
// product id (restock parts included) and returns how many it credited
// now.
func (e *Engine) finishTransfers(ctx context.Context, id string, ids []string) (int, error) {
	pend, err := e.pendingTransfers(ctx, id, ids)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pend {
		if !p.credited {
			n++
		}
		if err := e.completeTransfer(ctx, p); err != nil {
			return n, err
		}
	}
	return n, nil
}

// Repair completes the transfers (and restock parts) of sharded product id
// that a crash left half done, and returns how many it found. Safe while
// the sale runs.
func (e *Engine) Repair(ctx context.Context, id string) (int, error) {
	d, err := e.readShardDir(ctx, id)
	if err != nil || d.ids == nil {
		return 0, err
	}
	pend, err := e.pendingTransfers(ctx, id, d.ids)
	if err != nil {
		return 0, err
	}
	for _, p := range pend {
		if err := e.completeTransfer(ctx, p); err != nil {
			return 0, fmt.Errorf("repair %s: %w", id, err)
		}
	}
	return len(pend), nil
}

// shardedStatus sums the status of every shard of d.
func (e *Engine) shardedStatus(ctx context.Context, id string, d shardDir) (ProductStatus, error) {
	st := ProductStatus{ID: id, Initial: d.initial + d.restocked, Shards: len(d.ids)}
	for i, sid := range d.ids {
		s, err := e.statusOf(ctx, sid)
		if err != nil {
			return ProductStatus{}, err
		}
		st.Remaining += s.Remaining
		st.Held += s.Held
		st.Buyers += s.Buyers
		st.Customers += s.Customers // a customer's orders are all in their home shard
		st.Orders += s.Orders
		st.Reserved += s.Reserved
		st.Paid += s.Paid
		st.Expired += s.Expired
		st.Cancelled += s.Cancelled
		if i == 0 {
			st.Limit, st.Start, st.End, st.Now, st.Hold = s.Limit, s.Start, s.End, s.Now, s.Hold
		}
	}
	pend, err := e.pendingTransfers(ctx, id, d.ids)
	if err != nil {
		return ProductStatus{}, err
	}
	for _, p := range pend {
		if !p.credited {
			st.InTransit += p.units
		}
	}
	return st, nil
}

// shardedVerify audits every shard of d and the product's conservation:
// stock + held + units in transit == initial + restocks.
func (e *Engine) shardedVerify(ctx context.Context, id string, d shardDir) (Audit, error) {
	a := Audit{ID: id, Shards: len(d.ids), Initial: d.initial + d.restocked}
	var shardInitial int64
	for _, sid := range d.ids {
		s, err := e.verifyOf(ctx, sid)
		if err != nil {
			return Audit{}, err
		}
		for _, p := range s.Problems {
			a.Problems = append(a.Problems, "shard "+sid+": "+p)
		}
		shardInitial += s.Initial
		a.Remaining += s.Remaining
		a.Held += s.Held
		a.Sold += s.Sold
		a.Released += s.Released
		a.Orders += s.Orders
		a.Customers += s.Customers
		a.Reserved += s.Reserved
		a.Paid += s.Paid
	}
	pend, err := e.pendingTransfers(ctx, id, d.ids)
	if err != nil {
		return Audit{}, err
	}
	for _, p := range pend {
		if p.credited {
			a.Problems = append(a.Problems, p.what()+" credited but not settled (admin verify --repair settles it)")
		} else {
			a.InTransit += p.units
			step := "debited"
			if p.restock {
				step = "recorded"
			}
			a.Problems = append(a.Problems, p.what()+" "+step+" but not credited (admin verify --repair credits it)")
		}
	}
	if got := a.Remaining + a.Held + a.InTransit; got != a.Initial {
		a.Problems = append(a.Problems, fmt.Sprintf("stock %d + held %d + in transit %d = %d != initial + restocks %d",
			a.Remaining, a.Held, a.InTransit, got, a.Initial))
	}
	if got := shardInitial + a.InTransit; got != a.Initial {
		a.Problems = append(a.Problems, fmt.Sprintf("shards' initial %d + in transit %d != initial + restocks %d", shardInitial, a.InTransit, a.Initial))
	}
	return a, nil
}

// hideShards drops shard ids (ID#j of a listed ID) from a product list.
func hideShards(ids []string) []string {
	set := make(map[string]bool, len(ids))
	for _, id := range ids {
		set[id] = true
	}
	out := ids[:0]
	for _, id := range ids {
		if isShardID(id) && set[id[:strings.LastIndexByte(id, '#')]] {
			continue
		}
		out = append(out, id)
	}
	return out
}

// isShardID reports whether id has the form of a shard id (ID#j), whose
// own meta is never a directory.
func isShardID(id string) bool {
	i := strings.LastIndexByte(id, '#')
	return i > 0 && isDigits(id[i+1:])
}

// knownUnsharded reports whether id is a shard, or a product this server
// found unsharded lately: then Status needs no read of its directory.
func (e *Engine) knownUnsharded(id string) bool {
	if isShardID(id) {
		return true
	}
	ids, stale, ok := e.shards.get(id, e.now())
	return ok && !stale && ids == nil
}

// shardedOrders merges the orders streams of shards ids by time, the first
// limit entries (all when limit <= 0). Entry ids are unique per shard.
func (e *Engine) shardedOrders(ctx context.Context, ids []string, limit int) ([]Order, error) {
	var all []Order
	for _, sid := range ids {
		orders, err := e.ordersOf(ctx, sid, limit)
		if err != nil {
			return nil, err
		}
		for i := range orders {
			orders[i].Shard = sid
		}
		all = append(all, orders...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].Time.Before(all[j].Time) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}
