// peer_go.go - Go's peer of switch_bench, chan_bench and scale_bench, on
// one thread (GOMAXPROCS=1), measured the way those benches measure (see
// bench/peers/peer.h for the C peers, which this program mirrors):
//
//	yield handoff        two goroutines calling runtime.Gosched n times
//	                     each; ns per yield, first start to last end / 2n;
//	spawn + join         n times: go an empty function whose last act is a
//	                     send on an unbuffered channel, and receive it (the
//	                     join); ns per goroutine;
//	rendezvous ping-pong A sends on one unbuffered channel and receives on
//	                     another, B echoes, n round trips; ns per message;
//	rendezvous one way   A sends 2n, B receives; ns per message;
//	buffered one way     the same with capacity -capacity (64);
//	mutex handoff        A and B each unlock a sync.Mutex the other waits
//	                     for and lock it again, n times each; ns per lock.
//
// As in chan_bench, a goroutine counts a switch whenever it finds that the
// other ran since its own last operation, and the count per message or
// lock is printed: 1.00 is a true handoff. sync.Mutex is not FIFO: an
// Unlock makes the waiter runnable but lets the unlocker take the lock
// again at once, and on one thread the waiter does not run before the
// unlocker blocks, so chan_bench's loop measures an uncontended lock and
// unlock (0 switches). The second mutex figure makes the handoff happen:
// each goroutine unlocks, calls runtime.Gosched (the woken waiter runs and
// takes the lock) and locks again (waiting for the other's unlock); it
// pays a Gosched per lock beyond weave's loop.
//
// Each repetition measures every figure, the order rotating; repetition 0
// is a warm-up and is not counted; the median and the minimum of the
// others are printed, or one JSON object with -json.
//
// Sleepers (-tasks N): N goroutines each sleep once (-sleep-ms, 1000 ms).
// With -barrier each first waits on a channel that is closed once all N
// are spawned and parked, so that all N are alive at once; without it, Go
// runs goroutines while the spawn loop goes on (the spawner is preempted
// every 10 ms), and the early ones may sleep their time and end before the
// last is spawned: ended_before_last_sleep counts them. Reported: spawn
// time, the time until all are parked, the release, wall time (first
// spawn to the last end) and RSS per goroutine ((VmHWM after - VmRSS
// before) / N, as scale_bench).
//
// Usage: peer_go [-iterations N] [-repetitions R] [-capacity C] [-json]
//
//	peer_go -tasks N [-sleep-ms M] [-barrier] [-json]
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	figYield = iota
	figSpawn
	figRdvPing
	figRdvOneway
	figBufOneway
	figMutex
	figMutexGosched
	nfig
)

var figWhat = [nfig]string{"yield handoff (Gosched)", "spawn + join, empty goroutine",
	"rendezvous chan, ping-pong", "rendezvous chan, one way", "buffered chan, one way",
	"mutex handoff, ping-pong", "  Unlock, Gosched, Lock"}
var figUnit = [nfig]string{"ns/handoff", "ns/task", "ns/message", "ns/message", "ns/message",
	"ns/handoff", "ns/handoff"}

// The keys of switch_bench and chan_bench, so that one reader reads all.
var figKey = [nfig]string{"yield_handoff", "spawn_join", "chan_rendezvous_pingpong",
	"chan_rendezvous_oneway", "chan_buffered_oneway", "mutex_handoff", "mutex_handoff_gosched"}

// pair is what the two goroutines of a figure share. With GOMAXPROCS=1
// only one of them runs at a time, but the runtime may preempt one in the
// middle of an increment: the counts that decide the timing are atomic.
type pair struct {
	n        int
	started  atomic.Int64
	finished atomic.Int64
	t0, t1   time.Time
	last     int
	switches int
	ping     chan uint64
	pong     chan uint64
	lock     sync.Mutex
	holding  atomic.Bool
	wg       sync.WaitGroup
}

func (p *pair) begin() {
	if p.started.Add(1) == 1 {
		p.t0 = time.Now()
	}
}

func (p *pair) end() {
	if p.finished.Add(1) == 2 {
		p.t1 = time.Now()
	}
	p.wg.Done()
}

// seen is called after every operation: count a switch if the other ran.
func (p *pair) seen(me int) {
	if p.last != me {
		p.switches++
		p.last = me
	}
}

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "peer_go: "+format+"\n", args...)
	os.Exit(1)
}

func yielder(p *pair, me int) {
	p.begin()
	for i := 0; i < p.n; i++ {
		runtime.Gosched()
		p.seen(me)
	}
	p.end()
}

// pinger: A sends i on ping and waits for it back on pong; B echoes.
func pinger(p *pair, me int) {
	var v uint64
	p.begin()
	for i := 0; i < p.n; i++ {
		if me == 1 {
			p.ping <- uint64(i)
			p.seen(me)
			v = <-p.pong
		} else {
			v = <-p.ping
			p.seen(me)
			p.pong <- v
		}
		p.seen(me)
		if v != uint64(i) {
			die("ping-pong: message %d arrived as %d", i, v)
		}
	}
	p.end()
}

// streamer: A sends 2n numbers on ping, B receives them.
func streamer(p *pair, me int) {
	p.begin()
	for i := 0; i < 2*p.n; i++ {
		if me == 1 {
			p.ping <- uint64(i)
		} else if v := <-p.ping; v != uint64(i) {
			die("one way: message %d arrived as %d", i, v)
		}
		p.seen(me)
	}
	p.end()
}

// locker: as chan_bench's, each unlocks (the other waits for the lock) and
// locks again. A takes the lock first and lets B queue behind it.
func locker(p *pair, me int) {
	lockLoop(p, me, false)
}

// goschedLocker: the same with a Gosched after each Unlock, so that the
// waiter runs and takes the lock.
func goschedLocker(p *pair, me int) {
	lockLoop(p, me, true)
}

func lockLoop(p *pair, me int, gosched bool) {
	p.begin()
	if me == 1 {
		p.lock.Lock()
		p.holding.Store(true)
		runtime.Gosched() // B runs and queues for the lock
	} else {
		for !p.holding.Load() {
			runtime.Gosched()
		}
		p.lock.Lock()
	}
	for i := 0; i < p.n; i++ {
		p.lock.Unlock()
		if gosched {
			runtime.Gosched()
		}
		p.lock.Lock()
		p.seen(me)
	}
	p.lock.Unlock()
	p.end()
}

// measure runs figure f once and returns ns per operation and switches
// per operation.
func measure(f int, n int, capacity int) (float64, float64) {
	p := &pair{n: n}
	ops := float64(2 * n)
	var body func(*pair, int)
	switch f {
	case figYield:
		body = yielder
	case figSpawn:
		done := make(chan struct{})
		t0 := time.Now()
		for i := 0; i < n; i++ {
			go func() { done <- struct{}{} }()
			<-done
		}
		return float64(time.Since(t0).Nanoseconds()) / float64(n), 0
	case figRdvPing:
		p.ping, p.pong = make(chan uint64), make(chan uint64)
		body = pinger
	case figRdvOneway:
		p.ping = make(chan uint64)
		body = streamer
	case figBufOneway:
		p.ping = make(chan uint64, capacity)
		body = streamer
	case figMutex:
		body = locker
	case figMutexGosched:
		body = goschedLocker
	}
	p.wg.Add(2)
	go body(p, 1)
	go body(p, 2)
	p.wg.Wait()
	return float64(p.t1.Sub(p.t0).Nanoseconds()) / ops, float64(p.switches) / ops
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func minimum(v []float64) float64 {
	m := v[0]
	for _, x := range v {
		if x < m {
			m = x
		}
	}
	return m
}

func figures(n, reps, capacity int, asJSON bool) {
	var samples [nfig][]float64
	var sw [nfig]float64
	for r := 0; r <= reps; r++ {
		for i := 0; i < nfig; i++ {
			f := (r + i) % nfig
			ns, s := measure(f, n, capacity)
			if r > 0 { // repetition 0 is the warm-up
				samples[f] = append(samples[f], ns)
			}
			sw[f] = s
		}
	}
	if asJSON {
		fmt.Printf("{\"bench\":\"peer_go\",\"library\":\"go\",\"go\":\"%s\",\"gomaxprocs\":%d,"+
			"\"iterations\":%d,\"repetitions\":%d,\"capacity\":%d", runtime.Version(),
			runtime.GOMAXPROCS(0), n, reps, capacity)
		for f := 0; f < nfig; f++ {
			fmt.Printf(",\"%s_ns_median\":%.2f,\"%s_ns_min\":%.2f", figKey[f],
				median(samples[f]), figKey[f], minimum(samples[f]))
			if f != figSpawn {
				fmt.Printf(",\"%s_switches\":%.3f", figKey[f], sw[f])
			}
		}
		fmt.Println("}")
		return
	}
	fmt.Printf("peer_go: switch_bench's and chan_bench's figures, measured with %s, "+
		"GOMAXPROCS=%d\n", runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("parameters: iterations=%d per goroutine (2N messages or handoffs per figure), "+
		"repetitions=%d (after 1 warm-up),\n            figures interleaved (order rotates), "+
		"buffered channel capacity %d, 8-byte elements\n\n", n, reps, capacity)
	fmt.Printf("%-30s %-11s %9s %9s %9s\n", "what", "unit", "median", "min", "switches")
	for f := 0; f < nfig; f++ {
		s := fmt.Sprintf("%9.3f", sw[f])
		if f == figSpawn {
			s = ""
		}
		fmt.Printf("%-30s %-11s %9.1f %9.1f %9s\n", figWhat[f], figUnit[f], median(samples[f]),
			minimum(samples[f]), s)
	}
	fmt.Printf("\nswitches: goroutine switches seen per message or handoff.\n")
}

// statusKiB returns the value in KiB of a "Key: N kB" line of
// /proc/self/status.
func statusKiB(key string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		die("/proc/self/status: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, key+":") {
			fields := strings.Fields(line[len(key)+1:])
			if len(fields) > 0 {
				if v, err := strconv.ParseInt(fields[0], 10, 64); err == nil {
					return v
				}
			}
		}
	}
	die("/proc/self/status: no %s", key)
	return 0
}

// The sleepers' shared state; the counters are atomic, since the runtime
// may preempt a goroutine in the middle of an increment.
type sleepers struct {
	barrier  bool
	sleep    time.Duration
	start    chan struct{}
	wg       sync.WaitGroup
	waiting  atomic.Int64 // parked at the barrier, or sleeping (without one)
	sleeping atomic.Int64 // begun their sleep
	ended    atomic.Int64 // sleep over
}

func (s *sleepers) sleeper() {
	s.waiting.Add(1)
	if s.barrier {
		<-s.start
	}
	s.sleeping.Add(1)
	time.Sleep(s.sleep)
	s.ended.Add(1)
	s.wg.Done()
}

func scale(n int, sleepMs int, barrier bool, asJSON bool) {
	s := &sleepers{barrier: barrier, sleep: time.Duration(sleepMs) * time.Millisecond,
		start: make(chan struct{})}
	rssBase := statusKiB("VmRSS")
	t0 := time.Now()
	for i := 0; i < n; i++ {
		s.wg.Add(1)
		go s.sleeper()
	}
	t1 := time.Now()
	for s.waiting.Load() < int64(n) {
		runtime.Gosched()
	}
	t2 := time.Now()
	var release time.Duration
	if barrier {
		close(s.start)
		for s.sleeping.Load() < int64(n) {
			runtime.Gosched()
		}
		release = time.Since(t2)
	}
	endedEarly := s.ended.Load()
	s.wg.Wait()
	wall := time.Since(t0)
	rssPeak := statusKiB("VmHWM")
	perTask := float64(rssPeak-rssBase) / float64(n)
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

	if asJSON {
		fmt.Printf("{\"bench\":\"peer_go_scale\",\"library\":\"go\",\"go\":\"%s\","+
			"\"gomaxprocs\":%d,\"tasks\":%d,\"sleep_ms\":%d,\"barrier\":%t,\"spawn_ms\":%.3f,"+
			"\"first_run_ms\":%.3f,\"release_ms\":%.3f,\"wall_ms\":%.3f,"+
			"\"ended_before_last_sleep\":%d,\"rss_baseline_kib\":%d,\"rss_peak_kib\":%d,"+
			"\"rss_per_task_kib\":%.2f}\n", runtime.Version(), runtime.GOMAXPROCS(0), n,
			sleepMs, barrier, ms(t1.Sub(t0)), ms(t2.Sub(t1)), ms(release), ms(wall),
			endedEarly, rssBase, rssPeak, perTask)
		return
	}
	fmt.Printf("peer_go: many goroutines alive at once, each sleeping once, %s, GOMAXPROCS=%d\n",
		runtime.Version(), runtime.GOMAXPROCS(0))
	onOff := map[bool]string{true: "on", false: "off"}
	fmt.Printf("parameters: tasks=%d, sleep_ms=%d, barrier %s\n\n", n, sleepMs, onOff[barrier])
	fmt.Printf("%-24s %14s  %-8s %s\n", "what", "value", "unit", "note")
	fmt.Printf("%-24s %14.3f  %-8s %s\n", "spawn time", ms(t1.Sub(t0)), "ms",
		"all spawns, back to back")
	fmt.Printf("%-24s %14.3f  %-8s %s\n", "first run", ms(t2.Sub(t1)), "ms",
		"after the spawns, until every goroutine is parked")
	fmt.Printf("%-24s %14.3f  %-8s %s\n", "release", ms(release), "ms",
		"barrier opened until every goroutine sleeps")
	fmt.Printf("%-24s %14.3f  %-8s %s\n", "wall time", ms(wall), "ms", "first spawn until all ended")
	fmt.Printf("%-24s %14d  %-8s %s\n", "ended early", endedEarly, "",
		"goroutines ended when the last began its sleep")
	fmt.Printf("%-24s %14d  %-8s %s\n", "baseline RSS", rssBase, "KiB", "VmRSS before the first spawn")
	fmt.Printf("%-24s %14d  %-8s %s\n", "peak RSS", rssPeak, "KiB", "VmHWM after the run")
	fmt.Printf("%-24s %14.2f  %-8s %s\n", "RSS per task", perTask, "KiB",
		"(peak - baseline) / goroutines")
}

func main() {
	iterations := flag.Int("iterations", 100000, "operations per goroutine, figure and repetition")
	reps := flag.Int("repetitions", 7, "counted repetitions, after one warm-up")
	capacity := flag.Int("capacity", 64, "capacity of the buffered channel")
	tasks := flag.Int("tasks", 0, "instead of the figures: this many goroutines each sleeping once")
	sleepMs := flag.Int("sleep-ms", 1000, "each goroutine's sleep in ms")
	barrier := flag.Bool("barrier", false, "every goroutine waits until all are spawned, then sleeps")
	asJSON := flag.Bool("json", false, "one JSON object instead of the table")
	flag.Parse()
	if *iterations < 1 || *reps < 1 || *capacity < 1 || *tasks < 0 || *sleepMs < 0 {
		fmt.Fprintln(os.Stderr, "peer_go: -iterations, -repetitions, -capacity >= 1; "+
			"-tasks, -sleep-ms >= 0")
		os.Exit(2)
	}
	runtime.GOMAXPROCS(1)
	if *tasks > 0 {
		scale(*tasks, *sleepMs, *barrier, *asJSON)
	} else {
		figures(*iterations, *reps, *capacity, *asJSON)
	}
}
