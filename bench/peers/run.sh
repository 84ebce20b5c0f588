#!/bin/sh
# run.sh - weave's cross-thread channel figures beside Go's, in one sitting.
#
# Runs xthread_bench --only xchan (a shared channel between two schedulers
# on two threads, and two plain threads with a mutex and condition
# variables) and go/xthread.go (channels between two goroutines,
# GOMAXPROCS=2, plain and locked to two threads), alternating, --runs times,
# and prints the median of each figure over the runs, and their ratios.
# Every run's JSON line follows the table.
#
# usage: bench/peers/run.sh [--build DIR] [--runs N] [--messages N]
#   --build DIR   build folder with bench/xthread_bench (default
#                 build/release-asm; configured and built if missing)
#   --runs N      alternations (default 3)
#   --messages N  elements per figure (default 50000)
set -eu
cd "$(dirname "$0")/../.."

build=build/release-asm
runs=3
messages=50000
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --messages) messages="$2"; shift 2 ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: bench/peers/run.sh [--build DIR] [--runs N] [--messages N]" >&2; exit 2 ;;
    esac
done

command -v go >/dev/null || {
    echo "run.sh: go not found (apt-get install golang-go)" >&2
    exit 1
}
if [ ! -x "$build/bench/xthread_bench" ]; then
    preset=$(basename "$build")
    cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" >/dev/null
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/go_xthread" bench/peers/go/xthread.go

i=1
while [ "$i" -le "$runs" ]; do
    # Which goes first alternates from run to run.
    if [ $((i % 2)) -eq 1 ]; then
        "$build/bench/xthread_bench" --only xchan --json --xmessages "$messages" >>"$tmp/out"
        "$tmp/go_xthread" -json -messages "$messages" >>"$tmp/out"
    else
        "$tmp/go_xthread" -json -messages "$messages" >>"$tmp/out"
        "$build/bench/xthread_bench" --only xchan --json --xmessages "$messages" >>"$tmp/out"
    fi
    i=$((i + 1))
done

# median BENCH KEY: the median over the runs of KEY in BENCH's lines.
median() {
    grep "\"bench\":\"$1\"" "$tmp/out" | sed -n "s/.*\"$2\":\\([-0-9.]*\\).*/\\1/p" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

row() { # what weave-key pthread-key go-key go-locked-key
    w=$(median xthread_bench "$2")
    p=$(median xthread_bench "$3")
    g=$(median go_xthread "$4")
    l=$(median go_xthread "$5")
    awk -v what="$1" -v w="$w" -v p="$p" -v g="$g" -v l="$l" 'BEGIN {
        printf "%-22s %-7s %12.1f %12.1f %12.1f %12.1f %9.2fx %9.2fx\n", what, "ns/msg",
            w, p, g, l, w / g, w / l }'
}

go_version=$(go version | awk '{ print $3 }')
printf 'peers: a message between two threads: weave shared channel between two schedulers vs Go\n'
printf 'parameters: %s elements per figure, %s runs alternating (each the median of 5 repetitions);\n' \
    "$messages" "$runs"
printf '            medians over the runs; weave %s switch (%s), %s GOMAXPROCS=2, capacity 64\n\n' \
    "$(sed -n 's/.*"switch":"\([a-z]*\)".*/\1/p' "$tmp/out" | head -n 1)" "$build" "$go_version"
printf '%-22s %-7s %12s %12s %12s %12s %10s %10s\n' "what" "unit" "weave" "pthread" "go" \
    "go locked" "weave/go" "w/locked"
row "rendezvous" shared_rdv_2_sched_ns_median pthread_handoff_ns_median go_chan_rdv_ns_median \
    go_chan_rdv_locked_ns_median
row "buffered (64)" shared_buf_2_sched_ns_median pthread_ring_ns_median go_chan_buf_ns_median \
    go_chan_buf_locked_ns_median
printf '\nweave: a task on each of two schedulers (weave_run_threads); pthread: two plain threads,\n'
printf 'a mutex and two condition variables (xthread_bench'"'"'s floor); go: two goroutines, which Go\n'
printf 'may run on one thread in turn; go locked: each goroutine locked to a thread of its own.\n\n'
cat "$tmp/out"
