// Command svc is a small HTTP service of the kind memgate gates: a JSON endpoint
// (POST /items) whose items are kept in an in-memory cache, and net/http/pprof on the same
// listener (/debug/pprof/heap).
//
// -addr 127.0.0.1:0 picks a free port; -addr-file writes the address the service listens
// on, so that a script or a test can find it. -cache is the number of items kept: raising it
// is the "approved change" of the first-week flow (more memory by design).
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"

	"github.com/acme/shop/api"
	"github.com/acme/shop/ingest"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6060", "listen address")
	addrFile := flag.String("addr-file", "", "write the listen address to this file")
	size := flag.Int("cache", 1000, "items kept in the cache")
	rate := flag.Int("memprofilerate", 4096, "runtime.MemProfileRate")
	flag.Parse()
	runtime.MemProfileRate = *rate

	cache := ingest.New(*size)
	http.HandleFunc("/items", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		it, err := api.Decode(body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		cache.Put(it.ID, it, body)
		fmt.Fprintf(w, "%d\n", cache.Len())
	})
	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "ok")
	})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	if *addrFile != "" {
		tmp := *addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(ln.Addr().String()), 0o644); err != nil {
			log.Fatal(err)
		}
		if err := os.Rename(tmp, *addrFile); err != nil {
			log.Fatal(err)
		}
	}
	log.Fatal(http.Serve(ln, nil))
}
