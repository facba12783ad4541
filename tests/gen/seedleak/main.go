// Command seedleak reproduces, in miniature, a real incident: a kubelet whose
// heap grew because objects allocated by
// encoding/json.(*decodeState).literalStore (64-byte strings and boxed
// numbers stored into interface{} values) were retained forever.
//
// The workload is deterministic for a given -seed and -iterations: a pool of
// JSON payloads is generated from the seed, then decoded in a loop into
// structs whose fields are interface{}, []interface{} and
// map[string]interface{}. A bounded "working set" (ring buffer of 64) keeps
// the most recent decoded payloads alive in every run; with -leak-fraction > 0 a
// deterministic subset of decoded payloads is additionally appended to a
// global slice and never released (the leak).
//
// Independently of the JSON work, every run also keeps a fixed-size cache
// (-cache-mib, allocated by main.newCacheEntry) alive: the "rest of the
// process". So the no-leak inuse profile is dominated by that cache while the
// leak profiles gain encoding/json objects, mostly from literalStore.
//
// Heap sampling makes the written profile differ from run to run even with
// identical flags; that noise is intentional.
//
// Build and run with GOEXPERIMENT=nojsonv2 (Go >= 1.25), otherwise
// encoding/json uses the v2 engine and decodeState frames do not appear.
//
// Standard library only.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"
)

// PodStatus is decoded from every payload. The interface{}-typed containers
// make encoding/json store every top-level literal through
// (*decodeState).literalStore (string(s) / convertNumber + boxing).
type PodStatus struct {
	Name        string                 `json:"name"`
	Namespace   string                 `json:"namespace"`
	UID         interface{}            `json:"uid"`
	Phase       interface{}            `json:"phase"`
	Generation  interface{}            `json:"generation"`
	Labels      map[string]interface{} `json:"labels"`
	Annotations map[string]interface{} `json:"annotations"`
	Conditions  []interface{}          `json:"conditions"`
	Containers  []interface{}          `json:"containers"`
	Metrics     []interface{}          `json:"metrics"`
	Spec        interface{}            `json:"spec"`
}

var (
	// leaked is the global slice that grows without bound (the bug).
	leaked []*PodStatus
	// working is a bounded ring of recently decoded payloads (normal usage).
	working [64]*PodStatus
	sink    int
	// cache is the fixed, non-leaking part of the heap.
	cache []*cacheEntry
)

type cacheEntry struct {
	key  string
	data []byte
}

//go:noinline
func newCacheEntry(i int, size int) *cacheEntry {
	return &cacheEntry{key: fmt.Sprintf("entry-%08d", i), data: make([]byte, size)}
}

// buildCache allocates about mib MiB in entries of 1..8 KiB.
func buildCache(r *rand.Rand, mib int) {
	for total, i := 0, 0; total < mib<<20; i++ {
		e := newCacheEntry(i, 1024*(1+r.Intn(8)))
		cache = append(cache, e)
		total += len(e.data)
	}
}

const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"

// word returns a pseudo-random lowercase string of length n.
func word(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[r.Intn(len(alnum))]
	}
	return string(b)
}

// str64 returns strings of 49..64 bytes, i.e. the 64-byte size class.
func str64(r *rand.Rand) string { return word(r, 49+r.Intn(16)) }

func genPayload(r *rand.Rand, i int) []byte {
	labels := map[string]interface{}{}
	for j := 0; j < 8+r.Intn(8); j++ {
		labels[fmt.Sprintf("l%02d", j)] = str64(r)
	}
	ann := map[string]interface{}{}
	for j := 0; j < 4+r.Intn(4); j++ {
		if j%2 == 0 {
			ann[fmt.Sprintf("anno-%02d", j)] = r.Int63n(1 << 40)
		} else {
			ann[fmt.Sprintf("anno-%02d", j)] = str64(r)
		}
	}
	var conds []interface{}
	for j := 0; j < 3+r.Intn(3); j++ {
		conds = append(conds, str64(r), r.Float64()*1e6)
	}
	var containers []interface{}
	for j := 0; j < 1+r.Intn(2); j++ {
		containers = append(containers, map[string]interface{}{
			"name":  word(r, 8+r.Intn(8)),
			"image": "registry.example.com/" + str64(r),
			"ports": []interface{}{r.Intn(65536), r.Intn(65536)},
			"env":   map[string]interface{}{"A": str64(r), "B": r.Intn(1000)},
		})
	}
	var metrics []interface{}
	for j := 0; j < 48+r.Intn(32); j++ {
		if j%3 != 2 {
			metrics = append(metrics, str64(r))
		} else {
			metrics = append(metrics, r.Int63n(1<<50))
		}
	}
	doc := map[string]interface{}{
		"name":        fmt.Sprintf("pod-%06d-%s", i, word(r, 10)),
		"namespace":   word(r, 12),
		"uid":         str64(r),
		"phase":       str64(r),
		"generation":  r.Int63n(1 << 30),
		"labels":      labels,
		"annotations": ann,
		"conditions":  conds,
		"containers":  containers,
		"metrics":     metrics,
		"spec": map[string]interface{}{
			"nodeName": str64(r),
			"volumes":  []interface{}{str64(r), str64(r), map[string]interface{}{"size": r.Intn(1 << 20)}},
		},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

// leakPick decides deterministically (from the iteration number and seed)
// whether payload i is leaked.
func leakPick(i int, seed int64, frac float64) bool {
	if frac <= 0 {
		return false
	}
	x := uint64(i)*0x9E3779B97F4A7C15 ^ uint64(seed)*0xBF58476D1CE4E5B9
	x ^= x >> 31
	x *= 0x94D049BB133111EB
	x ^= x >> 29
	return float64(x>>11)/float64(1<<53) < frac
}

func decodeOne(data []byte) *PodStatus {
	var p PodStatus
	if err := json.Unmarshal(data, &p); err != nil {
		log.Fatal(err)
	}
	return &p
}

func runWorkload(pool [][]byte, iterations int, seed int64, frac float64, stop <-chan struct{}) (done int) {
	for i := 0; ; i++ {
		if stop == nil {
			if i >= iterations {
				return i
			}
		} else if i >= iterations {
			select {
			case <-stop:
				return i
			default:
			}
		}
		p := decodeOne(pool[i%len(pool)])
		working[i%len(working)] = p
		if leakPick(i, seed, frac) {
			leaked = append(leaked, p)
		}
		sink += len(p.Name)
	}
}

func main() {
	iterations := flag.Int("iterations", 20000, "number of payloads to decode")
	leakFraction := flag.Float64("leak-fraction", 0, "fraction of decoded payloads retained forever (0 = no leak)")
	seed := flag.Int64("seed", 1, "seed of the payload generator")
	out := flag.String("out", "heap.pb.gz", "output profile path")
	kind := flag.String("kind", "heap", "profile to write: heap or allocs")
	rate := flag.Int("memprofilerate", 512*1024, "runtime.MemProfileRate")
	debug := flag.Int("debug", 0, "WriteTo debug level: 0 = gzip proto, 1 = legacy text")
	cacheMiB := flag.Int("cache-mib", 8, "size of the fixed non-JSON cache kept alive (MiB)")
	poolSize := flag.Int("pool", 256, "number of distinct payloads generated from the seed")
	deltaSeconds := flag.Int("delta-seconds", 0, "if > 0: serve net/http/pprof on 127.0.0.1 and save /debug/pprof/<kind>?seconds=S fetched while the workload runs")
	flag.Parse()

	runtime.MemProfileRate = *rate
	if *kind != "heap" && *kind != "allocs" {
		log.Fatalf("bad -kind %q", *kind)
	}

	r := rand.New(rand.NewSource(*seed))
	pool := make([][]byte, *poolSize)
	total := 0
	for i := range pool {
		pool[i] = genPayload(r, i)
		total += len(pool[i])
	}
	buildCache(rand.New(rand.NewSource(*seed+1000)), *cacheMiB)
	start := time.Now()

	if *deltaSeconds > 0 {
		// Publish the setup allocations (cache, payload pool) to the heap
		// profile first, so the delta covers only the workload.
		runtime.GC()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			log.Fatal(err)
		}
		go http.Serve(ln, nil)
		url := fmt.Sprintf("http://%s/debug/pprof/%s?seconds=%d", ln.Addr(), *kind, *deltaSeconds)
		stop := make(chan struct{})
		result := make(chan []byte, 1)
		go func() {
			defer close(stop)
			resp, err := http.Get(url)
			if err != nil {
				log.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				log.Fatal(err)
			}
			if resp.StatusCode != 200 {
				log.Fatalf("%s: %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
			}
			result <- body
		}()
		n := runWorkload(pool, *iterations, *seed, *leakFraction, stop)
		body := <-result
		if err := os.WriteFile(*out, body, 0o644); err != nil {
			log.Fatal(err)
		}
		fmt.Fprintf(os.Stderr, "seedleak: delta mode: %d iterations in %v, pool %d payloads (%d bytes), leaked %d, wrote %s (%d bytes) from %s\n",
			n, time.Since(start).Round(time.Millisecond), len(pool), total, len(leaked), *out, len(body), url)
		return
	}

	n := runWorkload(pool, *iterations, *seed, *leakFraction, nil)
	runtime.GC()
	var buf bytes.Buffer
	if err := pprof.Lookup(*kind).WriteTo(&buf, *debug); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
		log.Fatal(err)
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Fprintf(os.Stderr, "seedleak: %d iterations in %v, pool %d payloads (%d bytes), leaked %d, HeapAlloc %d MiB, wrote %s (%d bytes)\n",
		n, time.Since(start).Round(time.Millisecond), len(pool), total, len(leaked), ms.HeapAlloc>>20, *out, buf.Len())
}
