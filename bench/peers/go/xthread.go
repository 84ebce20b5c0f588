// xthread.go - Go's peer of xthread_bench's cross-thread channel figures:
// 8-byte elements from one goroutine to another through a channel, with
// GOMAXPROCS=2 (two threads run goroutines), rendezvous (unbuffered) and
// buffered (capacity -capacity, 64 by default).
//
// Timed as xthread_bench times its shared channels between two schedulers:
// the sender sends n+1 elements, the receiver checks their order and times
// the last n, from its first receive to its last, so that starting the
// goroutines is not counted. Each repetition measures both kinds, the order
// rotating; the first repetition warms up and is not counted; the median
// and the best of the others are printed, or one JSON object with -json.
//
// Go's scheduler may run the two goroutines on one thread in turn (a
// receiver woken by a send is put next in the sender's own run queue), so
// the plain figures are what Go's channels cost with two threads
// available, not necessarily a handoff between two threads. The "locked"
// figures wire each goroutine to a thread of its own
// (runtime.LockOSThread): there every element crosses threads, as between
// two weave schedulers.
//
// Usage: go run xthread.go [-messages N] [-capacity C] [-repetitions R] [-json]
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"time"
)

// transfer sends n+1 elements through a channel of capacity capacity and
// returns the receiver's time per element over the last n. With locked,
// each goroutine is wired to a thread of its own (runtime.LockOSThread),
// so that every element crosses from one thread to the other.
func transfer(n int, capacity int, locked bool) (float64, error) {
	c := make(chan uint64, capacity)
	done := make(chan error)
	var elapsed time.Duration
	if locked {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
	}
	go func() {
		var t0 time.Time
		if locked {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
		}
		for i := 0; i <= n; i++ {
			v := <-c
			if v != uint64(i) {
				done <- fmt.Errorf("element %d arrived as %d", i, v)
				return
			}
			if i == 0 {
				t0 = time.Now()
			}
		}
		elapsed = time.Since(t0)
		done <- nil
	}()
	for i := 0; i <= n; i++ {
		c <- uint64(i)
	}
	if err := <-done; err != nil {
		return 0, err
	}
	return float64(elapsed.Nanoseconds()) / float64(n), nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func best(v []float64) float64 {
	b := v[0]
	for _, x := range v {
		if x < b {
			b = x
		}
	}
	return b
}

func main() {
	messages := flag.Int("messages", 50000, "elements per figure and repetition")
	capacity := flag.Int("capacity", 64, "capacity of the buffered channel")
	reps := flag.Int("repetitions", 5, "counted repetitions, after one warm-up")
	asJSON := flag.Bool("json", false, "one JSON object instead of the table")
	flag.Parse()
	if *messages < 2 || *capacity < 1 || *reps < 1 {
		fmt.Fprintln(os.Stderr, "xthread.go: -messages >= 2, -capacity >= 1, -repetitions >= 1")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(2)

	kinds := []struct {
		key, what string
		capacity  int
		locked    bool
	}{
		{"go_chan_rdv_ns", "chan rendezvous (unbuffered)", 0, false},
		{"go_chan_buf_ns", fmt.Sprintf("chan buffered (capacity %d)", *capacity), *capacity, false},
		{"go_chan_rdv_locked_ns", "chan rendezvous, 2 locked threads", 0, true},
		{"go_chan_buf_locked_ns", fmt.Sprintf("chan buffered (%d), 2 locked threads", *capacity),
			*capacity, true},
	}
	samples := make([][]float64, len(kinds))
	for r := 0; r <= *reps; r++ {
		for k := range kinds {
			which := (r + k) % len(kinds)
			ns, err := transfer(*messages, kinds[which].capacity, kinds[which].locked)
			if err != nil {
				fmt.Fprintln(os.Stderr, "xthread.go:", err)
				os.Exit(1)
			}
			if r > 0 { // repetition 0 is the warm-up
				samples[which] = append(samples[which], ns)
			}
		}
	}

	if *asJSON {
		fmt.Printf("{\"bench\":\"go_xthread\",\"go\":\"%s\",\"gomaxprocs\":%d,\"messages\":%d,"+
			"\"capacity\":%d,\"repetitions\":%d", runtime.Version(), runtime.GOMAXPROCS(0),
			*messages, *capacity, *reps)
		for k, kd := range kinds {
			fmt.Printf(",\"%s_median\":%.2f,\"%s_best\":%.2f", kd.key, median(samples[k]),
				kd.key, best(samples[k]))
		}
		fmt.Println("}")
		return
	}
	fmt.Printf("go xthread: 8-byte elements between two goroutines, %s, GOMAXPROCS=%d\n",
		runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("parameters: messages=%d, capacity=%d, repetitions=%d (after 1 warm-up; "+
		"order rotates)\n\n", *messages, *capacity, *reps)
	fmt.Printf("%-38s %-8s %10s %10s\n", "what", "unit", "median", "best")
	for k, kd := range kinds {
		fmt.Printf("%-38s %-8s %10.1f %10.1f\n", kd.what, "ns/msg", median(samples[k]),
			best(samples[k]))
	}
}
