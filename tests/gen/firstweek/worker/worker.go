// Package worker summarizes items in the background.
package worker

import (
	"github.com/acme/shop/api"
	"github.com/acme/shop/worker/queue"
)

// Summarize drains the queue and counts its items' tags.
func Summarize(q *queue.Queue) map[string]int { return CountTags(q.Drain()) }

// CountTags counts how often each tag occurs.
func CountTags(items []*api.Item) map[string]int {
	out := make(map[string]int)
	for _, it := range items {
		for k := range it.Tags {
			out[k]++
		}
	}
	return out
}
