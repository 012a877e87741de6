package loadgen

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latency histograms count microseconds from 1 µs to 60 s with three
// significant figures: every value is within 0.1% of what was recorded.
const (
	histLowest  = 1
	histHighest = 60_000_000
	histSigFigs = 3
	// maxHistograms bounds the histograms of a run (about 140 KB each):
	// connections beyond it share them.
	maxHistograms = 128
)

func newHistogram() *hdrhistogram.Histogram {
	return hdrhistogram.New(histLowest, histHighest, histSigFigs)
}

// latencyUS is d in whole microseconds, within the histograms' range.
func latencyUS(d time.Duration) int64 {
	return min(max(int64(d/time.Microsecond), 0), histHighest)
}

// histShard is one worker's histogram. Workers record into it in batches,
// so its lock is rarely taken and never contended unless there are more
// connections than histograms.
type histShard struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func (s *histShard) record(us []int64) {
	s.mu.Lock()
	for _, v := range us {
		s.h.RecordValue(v) // in range: latencyUS clamps
	}
	s.mu.Unlock()
}

// mergeHistograms adds every shard into one new histogram.
func mergeHistograms(shards []histShard) *hdrhistogram.Histogram {
	all := newHistogram()
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		all.Merge(s.h)
		s.mu.Unlock()
	}
	return all
}

// Latencies summarises the round trips that got an answer.
type Latencies struct {
	Count                                    int64
	Min, Mean, P50, P90, P95, P99, P999, Max time.Duration
}

// summarise reads the latencies out of a histogram of microseconds.
func summarise(h *hdrhistogram.Histogram) Latencies {
	if h.TotalCount() == 0 {
		return Latencies{}
	}
	us := func(v int64) time.Duration { return time.Duration(v) * time.Microsecond }
	q := h.ValueAtPercentilesSlice([]float64{50, 90, 95, 99, 99.9})
	return Latencies{
		Count: h.TotalCount(),
		Min:   us(h.Min()),
		Mean:  time.Duration(h.Mean() * float64(time.Microsecond)),
		P50:   us(q[0]), P90: us(q[1]), P95: us(q[2]), P99: us(q[3]), P999: us(q[4]),
		Max: us(h.Max()),
	}
}
