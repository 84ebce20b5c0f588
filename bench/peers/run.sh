#!/bin/sh
# run.sh - weave beside its peers (libdill, neco, Go), in one sitting.
#
# Tasks (the default): switch_bench, chan_bench and scale_bench --barrier
# from weave's two builds (release-asm: the hand-written switch; release:
# ucontext), and the peer programs that measure the same things the same
# way (libdill/peer_libdill.c, neco/peer_neco.c, go/peer_go/peer_go.go;
# bench/peers/README.md says how each is built and what differs). The
# peers are built from source trees given by path, into a temporary
# folder; a peer whose tree or toolchain is missing is skipped with one
# line saying so. Every program runs --runs times, interleaved (the order
# rotates from run to run), each run giving the median of the program's
# own repetitions; the table gives the median of the runs with their
# min-max, and weave asm over the best peer. Every run's JSON line follows
# the table.
#
# xthread (--only xthread): xthread_bench --only xchan (a shared channel
# between two schedulers, and a plain-thread floor) beside go/xthread.go
# (GOMAXPROCS=2), alternating --runs times.
#
# usage: bench/peers/run.sh [--libdill DIR] [--neco DIR] [--runs N] [--scale "N ..."]
#                           [--iterations N] [--repetitions R] [--asm-build DIR]
#                           [--ucontext-build DIR] [--neco-stack BYTES] [--libdill-guard]
#                           [--lock FILE]
#        bench/peers/run.sh --only xthread [--build DIR] [--runs N] [--messages N] [--lock FILE]
#   --libdill DIR       a libdill tree (sustrik/libdill), built with its CMake
#   --neco DIR          a neco tree (tidwall/neco): neco.c is compiled in
#   --runs N            interleaved runs of everything (default 3)
#   --scale "N ..."     sleepers: tasks alive at once (default "100000"; add
#                       1000000 for the large run: minutes, and about 5 GiB
#                       of memory for each program in turn)
#   --iterations N      operations per task and figure (default 100000)
#   --repetitions R     repetitions inside each program (default 7)
#   --asm-build DIR, --ucontext-build DIR
#                       weave build folders to use as they are (default
#                       build/release-asm and build/release, configured and
#                       built with their presets)
#   --neco-stack BYTES  NECO_STACKSIZE (default 131072, weave's default
#                       stack; 0: neco's own 8 MiB, which fails near 4,000
#                       coroutines on a machine with less than 36 GiB)
#   --libdill-guard     build libdill with its guard pages (default: without,
#                       -DDILL_NOGUARD; with them it fails near 32,000)
#   --lock FILE         run each timed program under flock FILE, so that
#                       timings never overlap those of others using FILE
#   --only xthread      the cross-thread channel comparison instead
#   --build DIR         (xthread) build folder with bench/xthread_bench
#                       (default build/release-asm; configured and built if
#                       missing)
#   --messages N        (xthread) elements per figure (default 50000)
# Environment: CC (default cc) and PEER_CFLAGS (default -O2, the peers'
# own default) for libdill and neco.
set -eu
cd "$(dirname "$0")/../.."

only=tasks
runs=3
lock=""
build=build/release-asm
messages=50000
libdill_dir=""
neco_dir=""
scales="100000"
iterations=100000
reps=7
capacity=64
asm_build=""
uc_build=""
neco_stack=131072
dill_defs="-DDILL_NOGUARD"
while [ $# -gt 0 ]; do
    case "$1" in
    --only) only="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --lock) lock="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    --messages) messages="$2"; shift 2 ;;
    --libdill) libdill_dir="$2"; shift 2 ;;
    --neco) neco_dir="$2"; shift 2 ;;
    --scale) scales="$2"; shift 2 ;;
    --iterations) iterations="$2"; shift 2 ;;
    --repetitions) reps="$2"; shift 2 ;;
    --asm-build) asm_build="$2"; shift 2 ;;
    --ucontext-build) uc_build="$2"; shift 2 ;;
    --neco-stack) neco_stack="$2"; shift 2 ;;
    --libdill-guard) dill_defs=""; shift ;;
    -h | --help) sed -n '2,51p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument '$1' (bench/peers/run.sh --help)" >&2; exit 2 ;;
    esac
done
case "$only" in
tasks | xthread) ;;
*) echo "run.sh: --only wants tasks or xthread, not '$only'" >&2; exit 2 ;;
esac
if [ -n "$lock" ] && ! command -v flock >/dev/null; then
    echo "run.sh: --lock needs flock (util-linux)" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
out="$tmp/out"
: >"$out"

# timed COMMAND...: run a timed program, under flock --lock FILE if given.
timed() {
    if [ -n "$lock" ]; then
        flock "$lock" "$@"
    else
        "$@"
    fi
}

# ---- xthread: weave's cross-thread channels beside Go's ---------------------

xthread_main() {
    command -v go >/dev/null || {
        echo "run.sh: go not found (apt-get install golang-go)" >&2
        exit 1
    }
    if [ ! -x "$build/bench/xthread_bench" ]; then
        preset=$(basename "$build")
        cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" >/dev/null
    fi
    go build -o "$tmp/go_xthread" bench/peers/go/xthread.go

    i=1
    while [ "$i" -le "$runs" ]; do
        # Which goes first alternates from run to run.
        if [ $((i % 2)) -eq 1 ]; then
            timed "$build/bench/xthread_bench" --only xchan --json --xmessages "$messages" >>"$out"
            timed "$tmp/go_xthread" -json -messages "$messages" >>"$out"
        else
            timed "$tmp/go_xthread" -json -messages "$messages" >>"$out"
            timed "$build/bench/xthread_bench" --only xchan --json --xmessages "$messages" >>"$out"
        fi
        i=$((i + 1))
    done

    # median BENCH KEY: the median over the runs of KEY in BENCH's lines.
    median() {
        grep "\"bench\":\"$1\"" "$out" | sed -n "s/.*\"$2\":\\([-0-9.]*\\).*/\\1/p" | sort -g |
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
        "$(sed -n 's/.*"switch":"\([a-z]*\)".*/\1/p' "$out" | head -n 1)" "$build" "$go_version"
    printf '%-22s %-7s %12s %12s %12s %12s %10s %10s\n' "what" "unit" "weave" "pthread" "go" \
        "go locked" "weave/go" "w/locked"
    row "rendezvous" shared_rdv_2_sched_ns_median pthread_handoff_ns_median go_chan_rdv_ns_median \
        go_chan_rdv_locked_ns_median
    row "buffered (64)" shared_buf_2_sched_ns_median pthread_ring_ns_median go_chan_buf_ns_median \
        go_chan_buf_locked_ns_median
    printf '\nweave: a task on each of two schedulers (weave_run_threads); pthread: two plain threads,\n'
    printf 'a mutex and two condition variables (xthread_bench'"'"'s floor); go: two goroutines, which Go\n'
    printf 'may run on one thread in turn; go locked: each goroutine locked to a thread of its own.\n\n'
    cat "$out"
}

if [ "$only" = xthread ]; then
    xthread_main
    exit 0
fi

# ---- tasks: one thread, weave beside libdill, neco and Go --------------------

notes="$tmp/notes"
: >"$notes"
# note LINE: a line for the head of the report (and for stderr now).
note() {
    printf '%s\n' "$1" >>"$notes"
    printf 'run.sh: %s\n' "$1" >&2
}

# weave_build DIR PRESET: use DIR as given, or configure and build PRESET.
weave_build() {
    if [ -n "$1" ]; then
        [ -x "$1/bench/switch_bench" ] || {
            echo "run.sh: no bench/switch_bench in $1" >&2
            exit 1
        }
        echo "$1"
        return
    fi
    if ! { cmake --preset "$2" && cmake --build --preset "$2"; } >"$tmp/weave-$2.log" 2>&1; then
        tail -n 20 "$tmp/weave-$2.log" >&2
        echo "run.sh: building weave's $2 preset failed" >&2
        exit 1
    fi
    echo "build/$2"
}
echo "run.sh: building weave (release-asm, release)" >&2
asm_build=$(weave_build "$asm_build" release-asm)
uc_build=$(weave_build "$uc_build" release)

cc=${CC:-cc}
peer_cflags=${PEER_CFLAGS:--O2}
have_cc=1
command -v "$cc" >/dev/null || have_cc=0
revision() { git -C "$1" rev-parse --short HEAD 2>/dev/null || echo "unknown revision"; }

# libdill: its own CMake build, a static library, then the program.
libdill_bin=""
if [ -z "$libdill_dir" ]; then
    note "libdill: skipped (no --libdill DIR)"
elif [ ! -f "$libdill_dir/libdill.h" ] || [ ! -f "$libdill_dir/CMakeLists.txt" ]; then
    note "libdill: skipped (no libdill tree at $libdill_dir)"
elif [ "$have_cc" = 0 ]; then
    note "libdill: skipped (no C compiler: $cc)"
else
    echo "run.sh: building libdill from $libdill_dir" >&2
    log="$tmp/libdill.log"
    # shellcheck disable=SC2086 # the flags are words
    if ! cmake -S "$libdill_dir" -B "$tmp/libdill-build" -DCMAKE_BUILD_TYPE=None \
        -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$peer_cflags $dill_defs" -DBUILD_TESTING=OFF \
        >"$log" 2>&1 || ! cmake --build "$tmp/libdill-build" -j 2 >>"$log" 2>&1; then
        note "libdill: skipped (its build failed: $(tail -n 1 "$log"))"
    elif ! $cc $peer_cflags $dill_defs -Wall -Wextra -I bench -I bench/peers -I "$libdill_dir" \
        bench/peers/libdill/peer_libdill.c bench/peers/peer.c bench/bench_util.c \
        "$tmp/libdill-build/libdill.a" -lpthread -o "$tmp/peer_libdill" >>"$log" 2>&1; then
        note "libdill: skipped (peer_libdill.c did not build: $(tail -n 1 "$log"))"
    else
        libdill_bin="$tmp/peer_libdill"
        libdill_about="libdill $(revision "$libdill_dir") ($libdill_dir), CMake, $peer_cflags $dill_defs"
    fi
fi

# neco: neco.c compiled on its own (with its own warnings left alone), then
# the program.
neco_bin=""
if [ "$neco_stack" -gt 0 ]; then
    neco_defs="-DNECO_STACKSIZE=$neco_stack"
else
    neco_defs=""
fi
if [ -z "$neco_dir" ]; then
    note "neco: skipped (no --neco DIR)"
elif [ ! -f "$neco_dir/neco.c" ] || [ ! -f "$neco_dir/neco.h" ]; then
    note "neco: skipped (no neco.c and neco.h in $neco_dir)"
elif [ "$have_cc" = 0 ]; then
    note "neco: skipped (no C compiler: $cc)"
else
    echo "run.sh: building neco from $neco_dir" >&2
    log="$tmp/neco.log"
    # shellcheck disable=SC2086 # the flags are words
    if ! $cc $peer_cflags $neco_defs -c "$neco_dir/neco.c" -o "$tmp/neco.o" >"$log" 2>&1; then
        note "neco: skipped (neco.c did not build: $(tail -n 1 "$log"))"
    elif ! $cc $peer_cflags $neco_defs -Wall -Wextra -I bench -I bench/peers -I "$neco_dir" \
        bench/peers/neco/peer_neco.c bench/peers/peer.c bench/bench_util.c "$tmp/neco.o" \
        -lpthread -ldl -o "$tmp/peer_neco" >>"$log" 2>&1; then
        note "neco: skipped (peer_neco.c did not build: $(tail -n 1 "$log"))"
    else
        neco_bin="$tmp/peer_neco"
        neco_about="neco $(revision "$neco_dir") ($neco_dir), one file, $peer_cflags ${neco_defs:-(8 MiB stacks)}"
    fi
fi

# Go: needs only its toolchain.
go_bin=""
if ! command -v go >/dev/null; then
    note "go: skipped (go not found: apt-get install golang-go)"
elif ! go build -o "$tmp/peer_go" bench/peers/go/peer_go/peer_go.go >"$tmp/go.log" 2>&1; then
    note "go: skipped (peer_go.go did not build: $(tail -n 1 "$tmp/go.log"))"
else
    go_bin="$tmp/peer_go"
    go_about="$(go version | awk '{ print $3 }'), GOMAXPROCS=1"
fi

cols="asm ucontext"
[ -z "$libdill_bin" ] || cols="$cols libdill"
[ -z "$neco_bin" ] || cols="$cols neco"
[ -z "$go_bin" ] || cols="$cols go"

# run_one TAG COMMAND...: run a timed program; its JSON lines go to $out
# after TAG. A failure is noted and recorded as {"failed":...} after TAG,
# and the run goes on.
run_one() {
    tag=$1
    shift
    printf 'run.sh: %s\n' "$tag" >&2
    if timed "$@" >"$tmp/one" 2>"$tmp/err"; then
        sed "s|^|$tag |" "$tmp/one" >>"$out"
    else
        status=$?
        sed "s|^|$tag |" "$tmp/one" >>"$out"
        if ! grep -q '"failed"' "$tmp/one"; then
            why=$(tail -n 1 "$tmp/err" | tr -d '\042\134')
            printf '%s {"failed":"exit status %s: %s"}\n' "$tag" "$status" "$why" >>"$out"
        fi
        note "$tag failed: $(tail -n 1 "$tmp/err")"
    fi
    cat "$tmp/err" >&2
}

# mem_ok TASKS: MemAvailable covers 12 KiB a task and 1 GiB more (the most
# any program here took was about 9.5 KiB a task, libdill at 10^5, its
# malloc'd stacks touching two pages each; scale_bench's raw page-touch
# child adds 4 KiB a task after its run).
mem_ok() {
    avail=$(awk '/^MemAvailable:/ { print $2 }' /proc/meminfo)
    [ "$avail" -ge $(($1 * 12 + 1048576)) ]
}

# figures COL: the figures of one column.
figures() {
    fig_args="--json --iterations $iterations --repetitions $reps"
    # shellcheck disable=SC2086 # the arguments are words
    case "$1" in
    asm | ucontext)
        if [ "$1" = asm ]; then b=$asm_build; else b=$uc_build; fi
        run_one "$1/switch" "$b/bench/switch_bench" $fig_args
        run_one "$1/chan" "$b/bench/chan_bench" $fig_args --capacity "$capacity"
        ;;
    libdill) run_one libdill/figures "$libdill_bin" $fig_args --capacity "$capacity" ;;
    neco) run_one neco/figures "$neco_bin" $fig_args --capacity "$capacity" ;;
    go) run_one go/figures "$go_bin" $fig_args --capacity "$capacity" ;;
    esac
}

# sleepers COL TASKS: the sleepers of one column (and weave's with a 4 KiB
# guard).
sleepers() {
    if ! mem_ok "$2"; then
        for t in "$1/scale-$2" "$1/scale-$2-g4"; do
            printf '%s {"skipped":"memory"}\n' "$t" >>"$out"
        done
        note "$1/scale-$2 skipped: MemAvailable under 12 KiB a task + 1 GiB"
        return
    fi
    scale_args="--json --tasks $2 --barrier"
    # shellcheck disable=SC2086 # the arguments are words
    case "$1" in
    asm | ucontext)
        if [ "$1" = asm ]; then b=$asm_build; else b=$uc_build; fi
        run_one "$1/scale-$2" "$b/bench/scale_bench" $scale_args
        run_one "$1/scale-$2-g4" "$b/bench/scale_bench" $scale_args --guard-kib 4
        ;;
    libdill) run_one "libdill/scale-$2" "$libdill_bin" $scale_args ;;
    neco) run_one "neco/scale-$2" "$neco_bin" $scale_args ;;
    go) run_one "go/scale-$2" "$go_bin" $scale_args ;;
    esac
}

# rotate K WORD...: the words from the K-th on (0-based, modulo their
# number), then those before it.
rotate() {
    k=$(($1 % ($# - 1)))
    shift
    first=""
    rest=""
    i=0
    for w in "$@"; do
        if [ "$i" -lt "$k" ]; then rest="$rest $w"; else first="$first $w"; fi
        i=$((i + 1))
    done
    # shellcheck disable=SC2086 # one space between the words
    echo $first $rest
}

run=1
while [ "$run" -le "$runs" ]; do
    # shellcheck disable=SC2086 # the columns are words
    order=$(rotate $((run - 1)) $cols)
    for c in $order; do
        figures "$c"
    done
    for n in $scales; do
        for c in $order; do
            sleepers "$c" "$n"
        done
    done
    run=$((run + 1))
done

# ---- the table -----------------------------------------------------------------

# stats TAG KEY: "median min max count failed skipped" of KEY over TAG's
# lines ("- - - 0 F S" when there is no value).
stats() {
    grep "^$1 " "$out" | awk -v key="\"$2\":" '
        index($0, "\"failed\"") { f++; next }
        index($0, "\"skipped\"") { s++; next }
        { i = index($0, key); if (i) v[++n] = substr($0, i + length(key)) + 0 }
        END {
            if (n == 0) { printf "- - - 0 %d %d\n", f, s; exit }
            for (a = 2; a <= n; a++)
                for (b = a; b > 1 && v[b - 1] > v[b]; b--) { t = v[b]; v[b] = v[b - 1]; v[b - 1] = t }
            m = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
            printf "%s %s %s %d %d %d\n", m, v[1], v[n], n, f, s
        }' || echo "- - - 0 0 0"
}

# cell TAG KEY DIGITS: the median with the min-max of the runs, "fails" if
# every run failed, "skipped", or "-".
cell() {
    # shellcheck disable=SC2046 # the statistics are words
    set -- "$3" $(stats "$1" "$2")
    awk -v d="$1" -v m="$2" -v lo="$3" -v hi="$4" -v n="$5" -v f="$6" -v s="$7" 'BEGIN {
        if (n == 0) { print (f > 0 ? "fails" : (s > 0 ? "skipped" : "-")); exit }
        fmt = "%." d "f"
        c = sprintf(fmt, m)
        if (n > 1) c = c sprintf(" (" fmt "-" fmt ")", lo, hi)
        if (f > 0) c = c "!"
        print c }'
}

# median TAG KEY: the median alone, or "-".
median_of() {
    stats "$1" "$2" | awk '{ print $1 }'
}

w_what=28
w_col=19
header() {
    printf "%-${w_what}s %-7s" "what" "unit"
    for h in "weave asm" "weave ucontext" "libdill" "neco" "go" "floor"; do
        printf " %${w_col}s" "$h"
    done
    printf "  %s\n" "asm/best peer"
}

# row WHAT UNIT DIGITS WEAVE-TAG KEY PEER-TAG [GO-KEY] [FLOOR-KEY]: one row;
# WEAVE-TAG and PEER-TAG are the tags' second parts (switch, chan, figures,
# scale-N, ...; PEER-TAG - for weave's rows only).
row() {
    what=$1 unit=$2 digits=$3 wtag=$4 key=$5 ptag=$6 gokey=${7:-$5} floorkey=${8:-}
    printf "%-${w_what}s %-7s" "$what" "$unit"
    for c in asm ucontext; do
        printf " %${w_col}s" "$(cell "$c/$wtag" "$key" "$digits")"
    done
    best="" best_name=""
    for c in libdill neco go; do
        if [ "$ptag" = - ]; then
            printf " %${w_col}s" "-"
            continue
        fi
        k=$key
        [ "$c" != go ] || k=$gokey
        printf " %${w_col}s" "$(cell "$c/$ptag" "$k" "$digits")"
        m=$(median_of "$c/$ptag" "$k")
        if [ "$m" != - ] && { [ -z "$best" ] || awk -v a="$m" -v b="$best" 'BEGIN { exit !(a < b) }'; }; then
            best=$m
            best_name=$c
        fi
    done
    if [ -n "$floorkey" ]; then
        printf " %${w_col}s" "$(cell "asm/$wtag" "$floorkey" "$digits")"
    else
        printf " %${w_col}s" "-"
    fi
    a=$(median_of "asm/$wtag" "$key")
    if [ -n "$best" ] && [ "$a" != - ]; then
        awk -v a="$a" -v b="$best" -v n="$best_name" 'BEGIN {
            if (b > 0) printf "  %.2fx %s\n", a / b, n; else print "  -" }'
    else
        printf '  -\n'
    fi
}

# switches LABEL WEAVE-TAG KEY: a line of the switches counted per message
# or handoff in each column.
switches() {
    line=$(printf '  %-26s' "$1")
    for c in $cols; do
        case "$c" in asm | ucontext) t="$c/$2" ;; *) t="$c/figures" ;; esac
        k=$3
        [ "$c" != go ] || [ "$3" != mutex_handoff_switches ] || k=mutex_handoff_gosched_switches
        line="$line $c $(median_of "$t" "$k" | awk '{ print ($1 == "-") ? $1 : sprintf("%.2f", $1) }')"
    done
    printf '%s\n' "$line"
}

weave_about="$(grep -m 1 '^asm/switch ' "$out" | sed -n 's/.*"context":"\([a-z]*\)".*/\1/p') \
($asm_build) and $(grep -m 1 '^ucontext/switch ' "$out" | sed -n 's/.*"context":"\([a-z]*\)".*/\1/p') \
($uc_build)"
printf 'peers: weave beside libdill, neco and Go on one thread, one sitting\n'
printf 'parameters: %s runs interleaved (order rotating), each the median of %s repetitions inside\n' \
    "$runs" "$reps"
printf '            the program; %s operations per task and figure; buffered capacity %s;\n' \
    "$iterations" "$capacity"
printf '            sleepers: %s tasks, each sleeping 1 s after a start barrier (all alive at once)\n' \
    "$(echo "$scales" | sed 's/ /, /g')"
printf 'weave:      %s\n' "$weave_about"
[ -z "$libdill_bin" ] || printf 'libdill:    %s\n' "$libdill_about"
[ -z "$neco_bin" ] || printf 'neco:       %s\n' "$neco_about"
[ -z "$go_bin" ] || printf 'go:         %s\n' "$go_about"
printf 'machine:    %s CPUs, Linux %s%s\n' "$(nproc)" "$(uname -r)" \
    "${lock:+, each program under flock $lock}"
if [ -s "$notes" ]; then
    sed 's/^/note:       /' "$notes"
fi
printf '\ncells: median of the runs (min-max); "!": some runs failed; "fails": every run failed.\n\n'

header
row "yield handoff" "ns" 1 switch yield_handoff_ns_median figures "" raw_register_switch_ns_median
row "spawn + join, empty task" "ns" 1 switch spawn_join_ns_median figures
row "rendezvous, ping-pong" "ns/msg" 1 chan chan_rendezvous_pingpong_ns_median figures
row "rendezvous, one way" "ns/msg" 1 chan chan_rendezvous_oneway_ns_median figures
row "buffered ($capacity), one way" "ns/msg" 1 chan chan_buffered_oneway_ns_median figures
row "mutex handoff" "ns" 1 chan mutex_handoff_ns_median figures mutex_handoff_gosched_ns_median
for n in $scales; do
    row "sleepers $n: wall" "ms" 0 "scale-$n" wall_ms "scale-$n"
    row "  RSS per task" "KiB" 2 "scale-$n" rss_per_task_kib "scale-$n"
    row "  the same, 4 KiB guard" "ms" 0 "scale-$n-g4" wall_ms -
    row "  RSS per task" "KiB" 2 "scale-$n-g4" rss_per_task_kib -
done

printf '\nswitches seen per message or handoff (1.00: one task switch each):\n'
switches "rendezvous, ping-pong" chan chan_rendezvous_pingpong_switches
switches "rendezvous, one way" chan chan_rendezvous_oneway_switches
switches "buffered, one way" chan chan_buffered_oneway_switches
switches "mutex handoff" chan mutex_handoff_switches
if [ -n "$go_bin" ]; then
    printf "  go's sync.Mutex in chan_bench's loop (no Gosched): %s ns, %s switches per lock\n" \
        "$(median_of go/figures mutex_handoff_ns_median)" \
        "$(median_of go/figures mutex_handoff_switches)"
fi
cat <<'EOF'

yield handoff: two tasks yielding to each other, ns per switch; floor: switch_bench's bare
  register switch (callee-saved registers and the stack pointer, nothing else).
spawn + join: libdill's dill_go and neco_start run the new task at once, which has ended
  when they return (one switch per task; weave's spawn + join makes two); Go: go and a
  receive from the goroutine's last send.
buffered: libdill has no buffered channels; mutex: libdill has none; Go's is sync.Mutex
  with a Gosched after each Unlock, without which it is never handed off on one thread
  (chan_bench's loop alone measures an uncontended lock there, as the line above shows).
sleepers: wall = first spawn to last end. Stacks: weave 128 KiB with a 256 KiB guard
  (MADV_GUARD_INSTALL), or a 4 KiB one; libdill 256 KiB malloc'd, no guard; neco
  NECO_STACKSIZE with 1 MiB gaps, no guard; Go's grow from 2 KiB (checked on entry).
asm/best peer: weave asm's median over the best peer's (lower is better in every row).
EOF
printf '\nraw JSON, every run (tag, then the line):\n'
cat "$out"
