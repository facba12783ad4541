// Command scenarios is a small service-like program for memgate's verdict scenario suite
// (tests/gen/scenarios.sh, docs/noise.md): every "request" reads a JSON body, decodes it, keeps
// the decoded value in a bounded cache (the steady state a real service has), and drops it when
// the cache evicts it. Beside the cache the process keeps ~24 MiB of long-lived buffers.
//
// The variants are the changes a gate must tell apart:
//
//	-leak F -leak-shape one     retain a fraction F of the decoded payloads' string lists
//	                            ([]string): the growth sits in
//	                            encoding/json.(*decodeState).literalStore (and the slice growth
//	                            under (*decodeState).array), as in the seed incident
//	-leak F -leak-shape spread  retain a fraction F of the decoded payloads' interface{} trees:
//	                            the growth is spread over objectInterface, arrayInterface,
//	                            literalInterface, unquote and convertNumber
//	-pooled                     the optimization: readBody reads into one exactly-sized buffer
//	                            instead of io.ReadAll's growing one (allocation moves from
//	                            io.ReadAll into readBody, and shrinks)
//	-churn N                    N KiB of short-lived scratch space per request, allocated in
//	                            main.handle (which every build has)
//	-stretch X                  the same work, X times the wall time (a slower runner)
//	-for D -rate R              time-paced instead of fixed-work: R requests/s for D
//
// Fixed work (-requests N) does the same allocations however fast the machine is; the heap
// profile is written after runtime.GC(). The wall time is printed on stderr and, with
// -wall FILE, written to FILE (seconds) for the scenario script.
//
// Build with GOEXPERIMENT=nojsonv2 (Go >= 1.25) so that encoding/json uses the decodeState
// engine. Standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"os"
	"runtime"
	"runtime/pprof"
	"time"
)

// Request is a decoded body: a typed list of strings and a free-form tree.
type Request struct {
	ID    string                 `json:"id"`
	Items []string               `json:"items"`
	Meta  map[string]interface{} `json:"meta"`
}

var (
	cache      = map[int]*Request{}
	cacheOrder []int
	buffers    [][]byte
	leakedOne  [][]string
	leakedTree []map[string]interface{}
	churnSink  []byte
)

const cacheSize = 1024

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

func word(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[r.Intn(len(alnum))]
	}
	return string(b)
}

func genPayload(r *rand.Rand, i int) []byte {
	items := make([]string, 48+r.Intn(32))
	for j := range items {
		items[j] = word(r, 40+r.Intn(24))
	}
	meta := map[string]interface{}{}
	for j := 0; j < 12+r.Intn(12); j++ {
		meta[fmt.Sprintf("k%02d", j)] = word(r, 30+r.Intn(30))
	}
	var nums []interface{}
	for j := 0; j < 20+r.Intn(20); j++ {
		nums = append(nums, r.Float64()*1e6)
	}
	meta["nums"] = nums
	var tags []interface{}
	for j := 0; j < 16+r.Intn(16); j++ {
		tags = append(tags, word(r, 20+r.Intn(20)))
	}
	meta["tags"] = tags
	meta["owner"] = map[string]interface{}{"name": word(r, 16), "team": word(r, 12), "n": r.Intn(1000)}
	b, err := json.Marshal(map[string]interface{}{
		"id": fmt.Sprintf("req-%06d", i), "items": items, "meta": meta,
	})
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// newBuffers keeps ~mib MiB alive in 256 KiB buffers: the rest of the process.
//
//go:noinline
func newBuffers(mib int) {
	for i := 0; i < mib*4; i++ {
		buffers = append(buffers, make([]byte, 256<<10))
	}
}

//go:noinline
func readBody(body io.Reader, n int, pooled bool) []byte {
	if pooled {
		buf := make([]byte, n)
		if _, err := io.ReadFull(body, buf); err != nil {
			log.Fatal(err)
		}
		return buf
	}
	b, err := io.ReadAll(body)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

//go:noinline
func decode(body []byte) *Request {
	var req Request
	if err := json.Unmarshal(body, &req); err != nil {
		log.Fatal(err)
	}
	return &req
}

func pick(i int, seed int64, frac float64) bool {
	if frac <= 0 {
		return false
	}
	x := uint64(i)*0x9E3779B97F4A7C15 ^ uint64(seed)*0xBF58476D1CE4E5B9
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	return float64(x>>11)/float64(1<<53) < frac
}

//go:noinline
func handle(i int, payload []byte, o *options) {
	body := readBody(bytes.NewReader(payload), len(payload), o.pooled)
	req := decode(body)
	if o.churn > 0 {
		// Scratch space that escapes (the sink) and is dropped: pure churn, in a function
		// every build has.
		churnSink = make([]byte, 1024*o.churn)
	}
	cache[i] = req
	cacheOrder = append(cacheOrder, i)
	if len(cacheOrder) > cacheSize {
		delete(cache, cacheOrder[0])
		cacheOrder = cacheOrder[1:]
	}
	if pick(i, o.seed, o.leak) {
		if o.shape == "spread" {
			leakedTree = append(leakedTree, req.Meta)
		} else {
			leakedOne = append(leakedOne, req.Items)
		}
	}
}

type options struct {
	pooled bool
	churn  int
	leak   float64
	shape  string
	seed   int64
}

func main() {
	requests := flag.Int("requests", 100000, "fixed work: number of requests")
	forD := flag.Duration("for", 0, "time-paced: run for this long (with -rate) instead of -requests")
	rate := flag.Int("rate", 1000, "time-paced: requests per second")
	leak := flag.Float64("leak", 0, "fraction of requests whose decoded data is retained forever")
	shape := flag.String("leak-shape", "one", "one ([]string, literalStore) or spread (interface{} tree)")
	pooled := flag.Bool("pooled", false, "the optimization: read bodies into one exact-size buffer")
	churnN := flag.Int("churn", 0, "extra 1 KiB scratch allocations per request")
	stretch := flag.Float64("stretch", 1, "make the run take this many times its wall time (sleeps)")
	seed := flag.Int64("seed", 1, "payload seed (the same for every run of a suite)")
	runSeed := flag.Int64("run-seed", 0, "varies the order of requests between runs")
	out := flag.String("out", "heap.pb.gz", "heap profile to write")
	wall := flag.String("wall", "", "write the wall time in seconds to this file")
	flag.Parse()
	if *shape != "one" && *shape != "spread" {
		log.Fatalf("bad -leak-shape %q", *shape)
	}
	o := &options{pooled: *pooled, churn: *churnN, leak: *leak, shape: *shape, seed: *seed}

	r := rand.New(rand.NewSource(*seed))
	pool := make([][]byte, 200)
	for i := range pool {
		pool[i] = genPayload(r, i)
	}
	newBuffers(24)
	order := rand.New(rand.NewSource(*runSeed))
	start := time.Now()
	n := 0
	if *forD > 0 {
		interval := time.Second / time.Duration(*rate)
		next := start
		for time.Since(start) < *forD {
			handle(n, pool[order.Intn(len(pool))], o)
			n++
			next = next.Add(interval)
			if d := time.Until(next); d > 0 {
				time.Sleep(d)
			}
		}
	} else {
		chunk := time.Now()
		for ; n < *requests; n++ {
			handle(n, pool[order.Intn(len(pool))], o)
			if *stretch > 1 && n%1000 == 999 {
				time.Sleep(time.Duration(float64(time.Since(chunk)) * (*stretch - 1)))
				chunk = time.Now()
			}
		}
	}
	elapsed := time.Since(start)
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup("heap").WriteTo(&buf, 0); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	if *wall != "" {
		if err := os.WriteFile(*wall, []byte(fmt.Sprintf("%.3f\n", elapsed.Seconds())), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Fprintf(os.Stderr, "scenarios: %d requests in %v, leaked %d+%d, wrote %s (%d bytes)\n",
		n, elapsed.Round(time.Millisecond), len(leakedOne), len(leakedTree), *out, buf.Len())
}
