package transport

// Retry says why a call was sent again: each is a reply that proves the
// call did not run, so sending it again cannot sell twice.
type Retry int

// Why calls are sent again.
const (
	// RetryMoved: MOVED, the slot has a new master (a reshard or a
	// failover the slot map had not caught up with).
	RetryMoved Retry = iota
	// RetryAsk: ASK, the slot is migrating and the key is at the target
	// already.
	RetryAsk
	// RetryTryAgain: TRYAGAIN, a call whose keys a migration has split
	// between two nodes.
	RetryTryAgain
	// RetryClusterDown: CLUSTERDOWN, the cluster serves no call now (a
	// master is failing over).
	RetryClusterDown
	// RetryNodeDown: the master could not be reached in time (no
	// connection: the call never left), or answered MASTERDOWN, READONLY
	// or LOADING (not serving writes yet, or no longer a master).
	RetryNodeDown
	// RetryNoScript: NOSCRIPT, the node did not have the script (a
	// restart, SCRIPT FLUSH, a node new to the cluster); it is loaded
	// there and the call sent once more.
	RetryNoScript
	numRetries
)

var retryNames = [numRetries]string{"moved", "ask", "tryagain", "clusterdown", "node_down", "noscript"}

// String is the reason's metric label: moved, ask, tryagain, clusterdown,
// node_down or noscript.
func (r Retry) String() string {
	if r < 0 || r >= numRetries {
		return "unknown"
	}
	return retryNames[r]
}

// Redirect reports whether r is a redirect (MOVED or ASK) rather than a
// retry of the same node or after a wait.
func (r Retry) Redirect() bool { return r == RetryMoved || r == RetryAsk }

// Retries lists every Retry, in order (r == Retries()[r]).
func Retries() []Retry {
	rs := make([]Retry, numRetries)
	for i := range rs {
		rs[i] = Retry(i)
	}
	return rs
}

// RetryObserver is an Observer that also hears of the calls sent again.
// A Batcher reports NOSCRIPT; a Cluster reports every Retry.
type RetryObserver interface {
	Observer
	// Retried is called once per call sent again, with why. A merged call
	// that meets NOSCRIPT counts once per purchase it carried (each is
	// sent again alone).
	Retried(why Retry)
}

// ClusterObserver is a RetryObserver that also hears of a Cluster's slot
// maps. A Cluster whose ClusterConfig.Batch.Observer is one reports to it.
type ClusterObserver interface {
	RetryObserver
	// SlotMap is called once per slot map read (at start, after MOVED,
	// after a failure), with how many masters serve slots in it.
	SlotMap(masters int)
}

// RefusalObserver is an Observer that also hears of refusals: error
// replies that prove a call did not run (see Cause). A Batcher reports
// each call answered with one, and each lane's connection refused on
// dial.
type RefusalObserver interface {
	Observer
	// Refused is called once per refusal, with its cause.
	Refused(cause Cause)
}
