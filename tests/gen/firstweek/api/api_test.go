package api

import (
	"fmt"
	"testing"
)

func BenchmarkDecode(b *testing.B) {
	body := []byte(fmt.Sprintf(`{"id":"item-1","tags":{"a":"x","b":2},"attrs":[1,"two",3.5],"note":%q}`,
		"a note of some length, long enough to be worth allocating"))
	for i := 0; i < b.N; i++ {
		if _, err := Decode(body); err != nil {
			b.Fatal(err)
		}
	}
}
