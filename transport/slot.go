package transport

import (
	"context"

	"github.com/mna/redisc"
)

// SlotOf implements engine.Redis: one node serves every slot.
func (p *Pool) SlotOf(_ context.Context, key string) (int, string, error) {
	return redisc.Slot(key), "", nil
}

// SlotOf implements engine.Redis: one node serves every slot.
func (b *Batcher) SlotOf(ctx context.Context, key string) (int, string, error) {
	return b.pool.SlotOf(ctx, key)
}

// SlotOf implements engine.Redis from the slot map: the master serving
// key's slot (sharded products spread over masters by it).
func (c *Cluster) SlotOf(ctx context.Context, key string) (int, string, error) {
	slot := redisc.Slot(key)
	n, _, err := c.owner(ctx, slot)
	if err != nil {
		return slot, "", err
	}
	return slot, n.addr, nil
}
