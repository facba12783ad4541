// Package ingest keeps the most recent items in memory.
package ingest

import (
	"sync"

	"github.com/acme/shop/api"
)

type entry struct {
	item *api.Item
	raw  []byte
}

// Cache keeps the last Max items, with a copy of the body each was decoded from.
type Cache struct {
	mu    sync.Mutex
	Max   int
	order []string
	items map[string]*entry
}

// New returns a cache of at most max items.
func New(max int) *Cache {
	return &Cache{Max: max, items: make(map[string]*entry)}
}

// Put stores an item, evicting the oldest beyond Max.
//
//go:noinline
func (c *Cache) Put(key string, it *api.Item, body []byte) {
	raw := make([]byte, len(body))
	copy(raw, body)
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[key]; !ok {
		c.order = append(c.order, key)
	}
	c.items[key] = &entry{item: it, raw: raw}
	for len(c.order) > c.Max {
		delete(c.items, c.order[0])
		c.order = c.order[1:]
	}
}

// Len is the number of items kept.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.items)
}
