#!/bin/sh
# backends.sh - weave's two task switches side by side, in one sitting.
#
# Builds the release (ucontext) and release-asm (hand-written switch)
# presets if needed, runs switch_bench, scale_bench and echo_bench on each,
# one after the other, and prints one table with the asm / ucontext ratio.
# Every figure is also on stdout as each bench printed it (--json lines),
# after the table.
#
# usage: bench/backends.sh [--tasks N] [--seconds S]
#   --tasks N    tasks of scale_bench (default 100000)
#   --seconds S  timed window of each echo_bench run (default 3)
set -eu
cd "$(dirname "$0")/.."

tasks=100000
seconds=3
while [ $# -gt 0 ]; do
    case "$1" in
    --tasks) tasks="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    *) echo "usage: bench/backends.sh [--tasks N] [--seconds S]" >&2; exit 2 ;;
    esac
done

for preset in release release-asm; do
    [ -x "build/$preset/bench/switch_bench" ] || {
        cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" >/dev/null
    }
done

out=$(mktemp)
trap 'rm -f "$out"' EXIT
for preset in release release-asm; do
    b="build/$preset/bench"
    "$b/switch_bench" --json | sed "s/^/$preset /" >>"$out"
    "$b/scale_bench" --json --tasks "$tasks" | sed "s/^/$preset /" >>"$out"
    "$b/echo_bench" --json --seconds "$seconds" | grep '"run":"ratio"\|"run":"median"' |
        sed "s/^/$preset /" >>"$out"
done

# value PRESET BENCH-PATTERN KEY: the number KEY has in PRESET's line that
# matches BENCH-PATTERN.
value() {
    grep "^$1 " "$out" | grep -- "$2" | head -n 1 |
        sed -n "s/.*\"$3\":\\([-0-9.]*\\).*/\\1/p"
}

row() { # what unit bench-pattern key
    u=$(value release "$3" "$4")
    a=$(value release-asm "$3" "$4")
    awk -v w="$1" -v n="$2" -v u="$u" -v a="$a" 'BEGIN {
        r = (u != "" && u + 0 != 0) ? sprintf("%.3f", a / u) : "-";
        printf "%-34s %-10s %14s %14s %10s\n", w, n, u, a, r }'
}

printf 'weave: ucontext (default) and asm (-DWEAVE_CONTEXT=asm) switches, one sitting\n'
printf 'scale_bench: %s tasks; echo_bench: %s s runs, medians of 3\n\n' "$tasks" "$seconds"
printf '%-34s %-10s %14s %14s %10s\n' "what" "unit" "ucontext" "asm" "asm/ucon"
row "raw swapcontext" "ns" switch_bench raw_swapcontext_ns_median
row "raw register switch" "ns" switch_bench raw_register_switch_ns_median
row "yield handoff" "ns" switch_bench yield_handoff_ns_median
row "spawn + join" "ns" switch_bench spawn_join_ns_median
row "spawn + join / raw swapcontext" "x" switch_bench spawn_join_over_raw
row "scale: spawn time" "ms" scale_bench spawn_ms
row "scale: first run" "ms" scale_bench first_run_ms
row "scale: wake-ups and joins" "ms" scale_bench drain_ms
row "scale: wall time" "ms" scale_bench wall_ms
row "scale: RSS per task" "KiB" scale_bench rss_per_task_kib
row "scale: minor faults per task" "" scale_bench minor_faults_per_task
row "scale: raw first touch" "ns" scale_bench raw_first_touch_ns
row "echo: weave messages/s" "1/s" '"server":"weave"' msgs_per_s
row "echo: epoll messages/s" "1/s" '"server":"epoll"' msgs_per_s
row "echo: weave / epoll messages/s" "x" '"run":"ratio"' msgs_per_s_weave_over_epoll
row "echo: weave / epoll server CPU" "x" '"run":"ratio"' server_cpu_weave_over_epoll
printf '\n'
cat "$out"
