package metrics

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/engine"
)

// ProductSource is what the per-product gauges read: engine.Engine's
// products and their status.
type ProductSource interface {
	Products(ctx context.Context) ([]string, error)
	Status(ctx context.Context, id string) (engine.ProductStatus, error)
}

// Bounds of one scrape's reading of the products.
const (
	// maxHeldProducts caps the products the per-product gauges read at a
	// scrape (as the dashboard caps those it shows).
	maxHeldProducts = 500
	// productsTimeout bounds the reading of them all.
	productsTimeout = 2 * time.Second
	// statusWorkers bounds the status reads a scrape runs at once (as the
	// dashboard's snapshot does): through the batcher they share round
	// trips.
	statusWorkers = 8
)

// productGauges are the gauges of one concern (reservations, waiting
// rooms) that a product's status gives.
type productGauges interface {
	describe(ch chan<- *prometheus.Desc)
	// collect sends s's gauges, if s has any of this concern.
	collect(ch chan<- prometheus.Metric, s engine.ProductStatus)
}

// statusCollector reads each product's status once per scrape and gives
// it to every productGauges. A product whose status cannot be read is
// left out of that scrape rather than failing it.
type statusCollector struct {
	src    ProductSource
	gauges []productGauges
}

func (c *statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range c.gauges {
		g.describe(ch)
	}
}

func (c *statusCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), productsTimeout)
	defer cancel()
	for _, s := range c.statuses(ctx) {
		for _, g := range c.gauges {
			g.collect(ch, s)
		}
	}
}

// statuses reads the status of the first maxHeldProducts products,
// statusWorkers at a time, leaving out those that fail.
func (c *statusCollector) statuses(ctx context.Context) []engine.ProductStatus {
	ids, err := c.src.Products(ctx)
	if err != nil {
		return nil
	}
	ids = ids[:min(len(ids), maxHeldProducts)]
	read := make([]engine.ProductStatus, len(ids))
	ok := make([]bool, len(ids))
	sem := make(chan struct{}, statusWorkers)
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			s, err := c.src.Status(ctx, id)
			s.ID = id
			read[i], ok[i] = s, err == nil
		})
	}
	wg.Wait()
	out := read[:0]
	for i, s := range read {
		if ok[i] {
			out = append(out, s)
		}
	}
	return out
}
