package loadgen

import (
	"cmp"
	"slices"
	"time"

	"github.com/flashsale/flashsale/wire"
)

// MaxSamples bounds the timeline of a run: past it, each connection keeps
// every other sample and then samples half as often, so a long run keeps
// an even spread of its answers in bounded memory.
const MaxSamples = 1 << 18

// Sample is one answer: when it came (since the start), how long it took,
// and its status (StatusError for an ERROR answer).
type Sample struct {
	At        time.Duration
	LatencyUS int64
	Status    wire.Status
}

// sampler keeps every stride-th sample of one connection, up to its share
// of MaxSamples.
type sampler struct {
	kept   []Sample
	limit  int
	stride int64
	n      int64 // samples offered
}

func (s *sampler) add(x Sample) {
	if s.stride == 0 {
		s.stride = 1
	}
	s.n++
	if (s.n-1)%s.stride != 0 {
		return
	}
	if s.limit > 0 && len(s.kept) >= s.limit {
		// Halve: keep every other sample, then sample half as often.
		for i := 0; 2*i < len(s.kept); i++ {
			s.kept[i] = s.kept[2*i]
		}
		s.kept = s.kept[:(len(s.kept)+1)/2]
		s.stride *= 2
		if (s.n-1)%s.stride != 0 {
			return
		}
	}
	s.kept = append(s.kept, x)
}

// mergeSamples joins the connections' samples in time order.
func mergeSamples(workers []*worker) []Sample {
	var all []Sample
	for _, w := range workers {
		all = append(all, w.samples.kept...)
	}
	slices.SortFunc(all, func(a, b Sample) int { return cmp.Compare(a.At, b.At) })
	return all
}
