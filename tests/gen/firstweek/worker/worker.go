// Package worker summarizes items in the background.
package worker

import "github.com/acme/shop/api"

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
