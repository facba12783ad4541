// Command load drives a fixed, deterministic workload against svc: -n POSTs of generated
// JSON items to -url, from -workers goroutines.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net/http"
	"strings"
	"sync"
)

func item(r *rand.Rand, i int) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"id":"item-%d","tags":{`, i)
	for t := 0; t < 8; t++ {
		if t > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"tag%d":"%s"`, t, strings.Repeat(string(rune('a'+r.Intn(26))), 40+r.Intn(20)))
	}
	b.WriteString(`},"attrs":[`)
	for a := 0; a < 16; a++ {
		if a > 0 {
			b.WriteByte(',')
		}
		if a%2 == 0 {
			fmt.Fprintf(&b, "%d.%d", r.Intn(1000), r.Intn(100))
		} else {
			fmt.Fprintf(&b, `"attr-%d-%s"`, a, strings.Repeat("x", 30+r.Intn(30)))
		}
	}
	fmt.Fprintf(&b, `],"note":"%s"}`, strings.Repeat("n", 200+r.Intn(200)))
	return b.Bytes()
}

func main() {
	url := flag.String("url", "http://127.0.0.1:6060/items", "the service's /items")
	n := flag.Int("n", 3000, "requests")
	workers := flag.Int("workers", 4, "concurrent clients")
	seed := flag.Int64("seed", 1, "seed of the generated items")
	flag.Parse()

	r := rand.New(rand.NewSource(*seed))
	bodies := make([][]byte, *n)
	for i := range bodies {
		bodies[i] = item(r, i)
	}
	jobs := make(chan []byte)
	var wg sync.WaitGroup
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for body := range jobs {
				resp, err := http.Post(*url, "application/json", bytes.NewReader(body))
				if err != nil {
					log.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					log.Fatalf("POST %s: %s", *url, resp.Status)
				}
			}
		}()
	}
	for _, b := range bodies {
		jobs <- b
	}
	close(jobs)
	wg.Wait()
}
