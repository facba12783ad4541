// Package queue is the worker's work queue: a second package under worker/, so that
// `go test ./worker/...` names two packages (and refuses -memprofile, which
// examples/workflows/matrix-merge.yml once asked of it).
package queue

import "github.com/acme/shop/api"

// Queue is a FIFO of items.
type Queue struct{ items []*api.Item }

// Push appends an item.
func (q *Queue) Push(it *api.Item) { q.items = append(q.items, it) }

// Drain returns the queued items and empties the queue.
func (q *Queue) Drain() []*api.Item {
	out := q.items
	q.items = nil
	return out
}
