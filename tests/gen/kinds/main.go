// Command kinds writes one Go profile of the kind chosen by -kind, for the
// profile kinds the seedleak and bigheap fixtures do not cover:
//
//	heap          heap profile (MemProfileRate -memprofilerate, default 64):
//	              deep direct recursion and mutual recursion (a function
//	              appears many times in one stack), small inlinable helpers,
//	              allocation from closures, generic functions and generic
//	              methods, and method values
//	cpu           CPU profile (pprof.StartCPUProfile) of -cpu-seconds of work
//	              with the same shapes (mutual recursion, closures, generics,
//	              method values)
//	block         block profile (SetBlockProfileRate(1)): unbuffered channel
//	              ping-pong, select, contended sync.Mutex/RWMutex, sync.Cond,
//	              sync.WaitGroup, all from recursive stacks
//	mutex         mutex profile (SetMutexProfileFraction(1)): contended
//	              sync.Mutex and sync.RWMutex from recursive stacks
//	goroutine     goroutine profile (WriteTo(f, 0)) of a fixed set of parked
//	              goroutines: chan receive, select, mutex, WaitGroup, Cond,
//	              sleep; some under pprof labels
//	threadcreate  threadcreate profile after forcing thread creation with
//	              LockOSThread and blocking syscalls
//
// The workloads are deterministic in structure (fixed goroutine counts,
// recursion depths and iteration counts); the sampled values are not.
//
// Standard library only.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"
)

// ---- shared shapes -----------------------------------------------------------

var (
	kept  [][]byte
	keptS []string
	keptI []int
	sink  uint64
)

// small inlinable helpers (no //go:noinline): they are inlined into their
// callers, so their frames are inline frames of the caller's location.
func mkBytes(n int) []byte { return make([]byte, n) }

func keepBytes(b []byte) { kept = append(kept, b) }

func mix(x uint64) uint64 {
	x ^= x >> 31
	x *= 0x9E3779B97F4A7C15
	return x ^ x>>29
}

// descend: direct recursion; allocates at every 4th level and at the bottom.
//
//go:noinline
func descend(n int, size int) []byte {
	if n == 0 {
		return mkBytes(size)
	}
	if n%4 == 0 {
		keepBytes(mkBytes(size / 2))
	}
	return descend(n-1, size)
}

// ping and pong: mutual recursion; both allocate on the way down.
//
//go:noinline
func ping(n int, size int) []byte {
	if n == 0 {
		return make([]byte, size)
	}
	if n%3 == 0 {
		kept = append(kept, make([]byte, 48))
	}
	return pong(n-1, size)
}

//go:noinline
func pong(n int, size int) []byte {
	if n == 0 {
		return make([]byte, size+8)
	}
	if n%5 == 0 {
		// mutual recursion through a third function as well
		return pang(n-1, size)
	}
	return ping(n-1, size)
}

//go:noinline
func pang(n int, size int) []byte {
	if n%2 == 0 {
		kept = append(kept, mkBytes(24))
	}
	return ping(n, size)
}

// Generics: one function and one type with methods, instantiated with
// several type arguments (shape names such as main.makeSlice[...]).
//
//go:noinline
func makeSlice[T any](n int) []T { return make([]T, n) }

type Stack[T any] struct{ items []T }

//go:noinline
func (s *Stack[T]) Push(v T) { s.items = append(s.items, v) }

//go:noinline
func Reduce[T any, A any](xs []T, acc A, f func(A, T) A) A {
	for _, x := range xs {
		acc = f(acc, x)
	}
	return acc
}

// Walker has methods used as method values (main.(*Walker).Step-fm).
type Walker struct {
	depth int
	buf   [][]byte
}

//go:noinline
func (w *Walker) Step(n int) {
	w.buf = append(w.buf, make([]byte, 32+n%7))
	if n > 0 {
		w.depth++
		w.Step(n - 1) // direct recursion of a method
	}
}

//go:noinline
func (w Walker) Sum(xs []uint64) uint64 {
	var s uint64
	for _, x := range xs {
		s += mix(x) + uint64(w.depth)
	}
	return s
}

// callInt and callSum call a function value the compiler cannot see through,
// so a method value passed to them runs through its -fm wrapper.
//
//go:noinline
func callInt(f func(int), n int) { f(n) }

//go:noinline
func callSum(f func([]uint64) uint64, xs []uint64) uint64 { return f(xs) }

// ---- heap ----------------------------------------------------------------------

func heapWork(rounds int) {
	var stackI Stack[int]
	var stackS Stack[string]
	w := &Walker{}
	step := w.Step // method value
	for r := 0; r < rounds; r++ {
		kept = append(kept, descend(8+r%24, 64+r%5*16))
		kept = append(kept, ping(6+r%30, 128))
		// closure allocating; recursive closure
		var rec func(n int) []byte
		rec = func(n int) []byte {
			if n == 0 {
				return mkBytes(96)
			}
			if n%2 == 1 {
				keepBytes(mkBytes(40))
			}
			return rec(n - 1)
		}
		kept = append(kept, rec(3+r%9))
		// nested closure
		func() {
			func() {
				keptS = append(keptS, string(mkBytes(20+r%3)))
			}()
		}()
		// generic allocations
		keptI = append(keptI, makeSlice[int](8+r%4)...)
		keptS = append(keptS, makeSlice[string](4)...)
		_ = makeSlice[[3]uint64](2 + r%3)
		stackI.Push(r)
		stackS.Push("x")
		// generic function taking a closure that allocates
		n := Reduce([]int{1, 2, 3, r % 10}, []byte(nil), func(acc []byte, x int) []byte {
			return append(acc, mkBytes(x*8)...)
		})
		kept = append(kept, n)
		if r%10 == 0 {
			callInt(step, 3+r%5)
		}
	}
	keptI = append(keptI, stackI.items...)
	keptS = append(keptS, stackS.items...)
	kept = append(kept, w.buf...)
}

// ---- cpu -----------------------------------------------------------------------

//go:noinline
func even(n int, x uint64) uint64 {
	if n == 0 {
		return spin(x, 200)
	}
	return odd(n-1, mix(x))
}

//go:noinline
func odd(n int, x uint64) uint64 {
	if n == 0 {
		return spin(x, 300)
	}
	if n%7 == 0 {
		return spin(x, 50) + even(n-1, x)
	}
	return even(n-1, x+1)
}

//go:noinline
func spin(x uint64, k int) uint64 {
	for i := 0; i < k; i++ {
		x = mix(x + uint64(i))
	}
	return x
}

//go:noinline
func deep(n int, x uint64) uint64 {
	if n == 0 {
		return spin(x, 400)
	}
	return deep(n-1, x^uint64(n)) + 1
}

//go:noinline
func Sum[T ~uint64 | ~int](xs []T) T {
	var s T
	for _, x := range xs {
		s += T(mix(uint64(x)))
	}
	return s
}

func cpuWork(d time.Duration) {
	start := time.Now()
	w := Walker{depth: 3}
	sum := w.Sum // method value
	xs := make([]uint64, 512)
	is := make([]int, 512)
	for i := range xs {
		xs[i] = uint64(i)
		is[i] = i
	}
	var rec func(n int, x uint64) uint64
	rec = func(n int, x uint64) uint64 { // recursive closure
		if n == 0 {
			return spin(x, 250)
		}
		return rec(n-1, x+3)
	}
	for r := 0; time.Since(start) < d; r++ {
		sink += even(10+r%30, uint64(r))
		sink += deep(5+r%40, uint64(r))
		sink += rec(2+r%12, uint64(r))
		sink += callSum(sum, xs)
		sink += Sum(xs) + uint64(Sum(is))
		sink += Reduce(xs, uint64(0), func(a, x uint64) uint64 { return a + mix(x) })
	}
}

// ---- block and mutex -------------------------------------------------------------

// nest runs f under n levels of alternating recursion (nestA/nestB).
//
//go:noinline
func nestA(n int, f func()) {
	if n == 0 {
		f()
		return
	}
	nestB(n-1, f)
}

//go:noinline
func nestB(n int, f func()) {
	if n == 0 {
		f()
		return
	}
	nestA(n-1, f)
}

//go:noinline
func lockLoop(mu *sync.Mutex, iters int, hold time.Duration) {
	for i := 0; i < iters; i++ {
		mu.Lock()
		t := time.Now()
		for time.Since(t) < hold {
			sink++
		}
		mu.Unlock()
	}
}

//go:noinline
func rwLoop(mu *sync.RWMutex, iters int, write bool) {
	for i := 0; i < iters; i++ {
		if write {
			mu.Lock()
			time.Sleep(50 * time.Microsecond)
			mu.Unlock()
		} else {
			mu.RLock()
			sink++
			time.Sleep(20 * time.Microsecond)
			mu.RUnlock()
		}
	}
}

func contention(withChannels bool) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	var rw sync.RWMutex
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			nestA(2+g*3, func() { lockLoop(&mu, 200, 20*time.Microsecond) })
		}(g)
	}
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			nestB(g*2, func() { rwLoop(&rw, 60, g == 0) })
		}(g)
	}
	if withChannels {
		// unbuffered ping-pong
		a, b := make(chan int), make(chan int)
		wg.Add(2)
		go func() {
			defer wg.Done()
			nestA(5, func() {
				for i := 0; i < 300; i++ {
					a <- i
					<-b
				}
				close(a)
			})
		}()
		go func() {
			defer wg.Done()
			nestB(7, func() {
				for v := range a {
					b <- v
				}
			})
		}()
		// select over two channels fed slowly
		c1, c2, done := make(chan int), make(chan int), make(chan struct{})
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				time.Sleep(100 * time.Microsecond)
				if i%2 == 0 {
					c1 <- i
				} else {
					c2 <- i
				}
			}
			close(done)
		}()
		go func() {
			defer wg.Done()
			for {
				select {
				case v := <-c1:
					sink += uint64(v)
				case v := <-c2:
					sink += uint64(v)
				case <-done:
					return
				}
			}
		}()
		// sync.Cond
		var cmu sync.Mutex
		cond := sync.NewCond(&cmu)
		ready := 0
		wg.Add(3)
		for g := 0; g < 2; g++ {
			go func() {
				defer wg.Done()
				cmu.Lock()
				for ready < 20 {
					cond.Wait()
				}
				cmu.Unlock()
			}()
		}
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				time.Sleep(200 * time.Microsecond)
				cmu.Lock()
				ready++
				cmu.Unlock()
				cond.Broadcast()
			}
		}()
	}
	wg.Wait()
}

// ---- goroutine --------------------------------------------------------------------

// parkedGoroutines starts a fixed set of goroutines that stay parked until
// release is closed; it returns once all of them are parked (approximately:
// it waits for them to start, then sleeps briefly).
func parkedGoroutines(release chan struct{}, held *sync.Mutex, cond *sync.Cond, wg *sync.WaitGroup) {
	var started sync.WaitGroup
	start := func(n int, f func()) {
		for i := 0; i < n; i++ {
			started.Add(1)
			go func() {
				started.Done()
				f()
			}()
		}
	}
	// 3 in a chan receive under mutual recursion of depth 9
	start(3, func() { nestA(9, func() { <-release }) })
	// 2 in a select under direct recursion
	never := make(chan int)
	start(2, func() {
		var rec func(int)
		rec = func(n int) {
			if n == 0 {
				select {
				case <-release:
				case <-never:
				}
				return
			}
			rec(n - 1)
		}
		rec(6)
	})
	// 4 blocked on a mutex that main holds
	start(4, func() { nestB(3, func() { held.Lock(); held.Unlock() }) })
	// 2 in cond.Wait
	start(2, func() {
		cond.L.Lock()
		cond.Wait()
		cond.L.Unlock()
	})
	// 1 in WaitGroup.Wait
	start(1, func() { wg.Wait() })
	// 2 sleeping
	start(2, func() { time.Sleep(time.Hour) })
	// 3 under pprof labels
	for i, v := range []string{"a", "b", "c"} {
		lbl := pprof.Labels("worker", v, "shard", string(rune('0'+i)))
		started.Add(1)
		go pprof.Do(context.Background(), lbl, func(context.Context) {
			started.Done()
			deep2(4, release)
		})
	}
	started.Wait()
	time.Sleep(100 * time.Millisecond)
}

//go:noinline
func deep2(n int, c chan struct{}) {
	if n == 0 {
		<-c
		return
	}
	deep2(n-1, c)
}

// ---- threadcreate --------------------------------------------------------------------

func makeThreads(n int) {
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			runtime.LockOSThread() // keeps this M; others need new threads
			wg.Done()
			<-hold
			runtime.UnlockOSThread()
		}()
	}
	wg.Wait()
	// blocking syscalls also make the scheduler start threads
	var sw sync.WaitGroup
	for i := 0; i < 4; i++ {
		sw.Add(1)
		go func() {
			defer sw.Done()
			r, w, err := os.Pipe()
			if err != nil {
				return
			}
			go func() { time.Sleep(20 * time.Millisecond); w.Write([]byte{1}); w.Close() }()
			b := make([]byte, 1)
			r.Read(b)
			r.Close()
		}()
	}
	sw.Wait()
	close(hold)
}

// ---- main --------------------------------------------------------------------------

func main() {
	kind := flag.String("kind", "heap", "heap, cpu, block, mutex, goroutine or threadcreate")
	out := flag.String("out", "", "output profile path (default <kind>.pb.gz)")
	rate := flag.Int("memprofilerate", 64, "runtime.MemProfileRate for -kind heap")
	rounds := flag.Int("rounds", 400, "heap workload rounds")
	cpuSeconds := flag.Float64("cpu-seconds", 1.5, "duration of the CPU workload")
	flag.Parse()
	if *out == "" {
		*out = *kind + ".pb.gz"
	}
	f, err := os.Create(*out)
	if err != nil {
		log.Fatal(err)
	}
	defer f.Close()

	switch *kind {
	case "heap":
		runtime.MemProfileRate = *rate
		heapWork(*rounds)
		runtime.GC()
		err = pprof.Lookup("heap").WriteTo(f, 0)
	case "cpu":
		if err = pprof.StartCPUProfile(f); err != nil {
			break
		}
		cpuWork(time.Duration(*cpuSeconds * float64(time.Second)))
		pprof.StopCPUProfile()
	case "block":
		runtime.SetBlockProfileRate(1)
		contention(true)
		runtime.SetBlockProfileRate(0)
		err = pprof.Lookup("block").WriteTo(f, 0)
	case "mutex":
		runtime.SetMutexProfileFraction(1)
		contention(false)
		runtime.SetMutexProfileFraction(0)
		err = pprof.Lookup("mutex").WriteTo(f, 0)
	case "goroutine":
		release := make(chan struct{})
		var held, cmu sync.Mutex
		cond := sync.NewCond(&cmu)
		var wg sync.WaitGroup
		wg.Add(1)
		held.Lock()
		parkedGoroutines(release, &held, cond, &wg)
		err = pprof.Lookup("goroutine").WriteTo(f, 0)
		close(release)
		held.Unlock()
	case "threadcreate":
		makeThreads(6)
		err = pprof.Lookup("threadcreate").WriteTo(f, 0)
	default:
		log.Fatalf("unknown -kind %q", *kind)
	}
	if err != nil {
		log.Fatal(err)
	}
}
