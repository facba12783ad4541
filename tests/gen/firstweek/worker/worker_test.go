package worker

import (
	"fmt"
	"testing"

	"github.com/acme/shop/api"
)

func BenchmarkCountTags(b *testing.B) {
	items := make([]*api.Item, 64)
	for i := range items {
		items[i] = &api.Item{Tags: map[string]interface{}{fmt.Sprint(i % 8): i}}
	}
	for i := 0; i < b.N; i++ {
		CountTags(items)
	}
}
