package ingest

import (
	"fmt"
	"testing"

	"github.com/acme/shop/api"
)

func BenchmarkPut(b *testing.B) {
	c := New(256)
	body := make([]byte, 512)
	it := &api.Item{ID: "x"}
	for i := 0; i < b.N; i++ {
		c.Put(fmt.Sprintf("k%d", i%1024), it, body)
	}
}
