#!/bin/sh
# http_vs_nginx.sh - demo/http_hello against nginx under wrk, and the memory
# an idle keep-alive connection costs each.
#
# For each number of threads T and each concurrency C: --runs times, the
# two servers in turn (which goes first alternates from run to run), each
# freshly started:
#
#   1. RSS per idle connection: the server's resident memory (VmRSS of every
#      process of it, from /proc: http_hello's one, nginx's master and
#      workers) is read, then C keep-alive connections are opened, each
#      sends one request and reads the answer, and stays open and idle; after
#      a moment the memory is read again. (after - before) / C is what one
#      idle connection costs the server (kernel socket buffers not counted).
#   2. wrk -tW -cC -dD against it: requests/s (and wrk's socket errors).
#
# The servers: http_hello --threads T (T schedulers, SO_REUSEPORT) and nginx
# with worker_processes T, configured as NOTES.md says for a fair pair:
# access_log off, keepalive_requests 100000000, listen 127.0.0.1:PORT
# backlog=1024 (http_hello's backlog), return 200 "hello\n" (the same 6-byte
# body), worker_connections 20000, worker_rlimit_nofile 20000; both with an
# idle timeout of an hour. The fd limit is 20000 (the hard limit here).
#
# With --tls both serve HTTPS with one certificate (made for the run by
# test/tls_certs.sh: a chain for "localhost" signed by a throwaway CA):
# http_hello --tls, nginx with "listen ... ssl" and the same chain and key,
# OpenSSL's defaults on both sides (TLS 1.3 between wrk and either), and
# wrk and the idle client speak TLS; connections are kept alive, so a run
# measures records more than handshakes.
#
# The table gives the median over the runs of each figure, and weave/nginx.
# With two or more thread counts it adds a scaling table: each server's
# requests/s at each T over its requests/s at the first.
#
# usage: bench/http_vs_nginx.sh [--build DIR] [--threads "1 2"] [--conns "100 1000 10000"]
#                               [--runs N] [--duration D] [--wrk-threads W] [--no-rss] [--tls]
#   --build DIR      build folder with demo/http_hello (default build/release-asm;
#                    configured and built if missing)
#   --threads LIST   schedulers / worker processes (default "2")
#   --conns LIST     wrk's connections, and idle connections for RSS
#                    (default "100 1000 10000")
#   --runs N         alternating runs per (T, C) (default 3)
#   --duration D     of each wrk run, as wrk takes it (default 10s)
#   --wrk-threads W  wrk's threads (default 2)
#   --no-rss         skip the idle-connection memory
#   --port P         the port both servers listen on (default 18080)
#   --tls            HTTPS on both (see above)
set -eu
cd "$(dirname "$0")/.."
root=$(pwd)

build=build/release-asm
threads_list="2"
conns_list="100 1000 10000"
runs=3
duration=10s
wrk_threads=2
rss=1
port=18080
tls=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build) build="$2"; shift 2 ;;
    --threads) threads_list="$2"; shift 2 ;;
    --conns) conns_list="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --duration) duration="$2"; shift 2 ;;
    --wrk-threads) wrk_threads="$2"; shift 2 ;;
    --no-rss) rss=0; shift ;;
    --port) port="$2"; shift 2 ;;
    --tls) tls=1; shift ;;
    -h | --help) sed -n '2,47p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "http_vs_nginx.sh: unknown argument '$1' (--help)" >&2; exit 2 ;;
    esac
done

for tool in wrk nginx python3 curl; do
    command -v "$tool" >/dev/null || {
        echo "http_vs_nginx.sh: $tool not found (apt-get install -y wrk nginx python3 curl)" >&2
        exit 1
    }
done
ulimit -n 20000 2>/dev/null || {
    echo "http_vs_nginx.sh: cannot raise the fd limit to 20000 (ulimit -n: $(ulimit -n))" >&2
    exit 1
}
case "$build" in /*) ;; *) build="$root/$build" ;; esac
hello="$build/demo/http_hello"
if [ ! -x "$hello" ]; then
    preset=$(basename "$build")
    cmake --preset "$preset" >/dev/null && cmake --build --preset "$preset" >/dev/null
fi

tmp=$(mktemp -d)
scheme=http
hello_tls=""
nginx_listen="127.0.0.1:$port backlog=1024"
nginx_tls=""
if [ "$tls" -eq 1 ]; then
    mkdir -p "$tmp/certs"
    sh "$root/test/tls_certs.sh" "$tmp/certs" >/dev/null 2>&1 || {
        echo "http_vs_nginx.sh: test/tls_certs.sh could not make the certificate" >&2
        exit 1
    }
    scheme=https
    hello_tls="--tls $tmp/certs/chain.crt $tmp/certs/server.key"
    nginx_listen="$nginx_listen ssl"
    nginx_tls="ssl_certificate $tmp/certs/chain.crt; ssl_certificate_key $tmp/certs/server.key;"
fi
server_pid=""
client_pid=""
cleanup() {
    [ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null || true
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- the servers ----------------------------------------------------------

nginx_conf() { # workers
    mkdir -p "$tmp/nginx/logs" "$tmp/nginx/tmp"
    cat >"$tmp/nginx/nginx.conf" <<EOF
worker_processes $1;
worker_rlimit_nofile 20000;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/logs/error.log warn;
events { worker_connections 20000; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 3600s;
    default_type text/plain;
    client_body_temp_path $tmp/nginx/tmp/body;
    proxy_temp_path $tmp/nginx/tmp/proxy;
    fastcgi_temp_path $tmp/nginx/tmp/fastcgi;
    uwsgi_temp_path $tmp/nginx/tmp/uwsgi;
    scgi_temp_path $tmp/nginx/tmp/scgi;
    server {
        listen $nginx_listen;
        $nginx_tls
        location / { return 200 "hello\n"; }
    }
}
EOF
}

# Wait until the port answers a request (5 s at most).
wait_ready() {
    i=0
    while ! curl -k -s -o /dev/null "$scheme://127.0.0.1:$port/"; do
        i=$((i + 1))
        if [ "$i" -gt 100 ]; then
            echo "http_vs_nginx.sh: $1 does not answer on port $port" >&2
            exit 1
        fi
        sleep 0.05
    done
}

start_server() { # weave|nginx threads
    if [ "$1" = weave ]; then
        # shellcheck disable=SC2086 # $hello_tls: the option and its two paths
        "$hello" --port "$port" --threads "$2" --idle-ms 3600000 --head-ms 3600000 $hello_tls \
            >"$tmp/hello.out" 2>&1 &
        server_pid=$!
    else
        nginx_conf "$2"
        nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -g 'daemon off;' \
            >"$tmp/nginx.out" 2>&1 &
        server_pid=$!
    fi
    wait_ready "$1"
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -INT "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# VmRSS of the server, KiB: its process and every child (nginx's workers).
server_rss() {
    pids="$server_pid $(pgrep -P "$server_pid" | tr '\n' ' ')"
    kib=0
    for p in $pids; do
        v=$(sed -n 's/^VmRSS:[ \t]*\([0-9]*\) kB/\1/p' "/proc/$p/status" 2>/dev/null || echo 0)
        kib=$((kib + ${v:-0}))
    done
    echo "$kib"
}

# ---- idle connections -----------------------------------------------------

cat >"$tmp/idle.py" <<'EOF'
# Open N keep-alive connections, one request and its answer on each, then
# say "ready" and hold them open, idle, until killed.
import socket, ssl, sys, time
port, n, tls = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "https"
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
req = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port))
    if tls:
        s = ctx.wrap_socket(s)
    s.sendall(req)
    got = b""
    while not got.endswith(b"hello\n"):
        piece = s.recv(4096)
        if not piece:
            sys.exit("idle.py: the server closed a connection")
        got += piece
    socks.append(s)
print("ready", flush=True)
while True:
    time.sleep(3600)
EOF

# KiB per idle connection (a decimal), for C connections.
rss_per_conn() { # conns
    before=$(server_rss)
    python3 "$tmp/idle.py" "$port" "$1" "$scheme" >"$tmp/idle.out" 2>&1 &
    client_pid=$!
    i=0
    until grep -q ready "$tmp/idle.out"; do
        if ! kill -0 "$client_pid" 2>/dev/null; then
            echo "http_vs_nginx.sh: the idle client failed: $(cat "$tmp/idle.out")" >&2
            exit 1
        fi
        i=$((i + 1))
        [ "$i" -gt 1200 ] && { echo "http_vs_nginx.sh: idle client too slow" >&2; exit 1; }
        sleep 0.05
    done
    sleep 0.5
    after=$(server_rss)
    kill "$client_pid" 2>/dev/null || true
    wait "$client_pid" 2>/dev/null || true
    client_pid=""
    awk -v a="$after" -v b="$before" -v c="$1" 'BEGIN { printf "%.2f\n", (a - b) / c }'
}

# ---- one run --------------------------------------------------------------

results="$tmp/results" # server threads conns run rps errors rss_kib_per_conn busy
: >"$results"

one_run() { # server threads conns run
    start_server "$1" "$2"
    r="-"
    [ "$rss" -eq 1 ] && r=$(rss_per_conn "$3")
    # Compilers running meanwhile (other engineers' builds) disturb the figures.
    busy=$(pgrep -c -x 'cc1|cc1plus|clang|ld' 2>/dev/null || true)
    wrk -t"$wrk_threads" -c"$3" -d"$duration" "$scheme://127.0.0.1:$port/" >"$tmp/wrk.out" 2>&1 || true
    rps=$(sed -n 's/^Requests\/sec:[ \t]*\([0-9.]*\).*/\1/p' "$tmp/wrk.out")
    errs=$(sed -n 's/.*Socket errors: \(.*\)/\1/p' "$tmp/wrk.out" | tr -d ' ')
    non2xx=$(sed -n 's/.*Non-2xx or 3xx responses: *\([0-9]*\).*/\1/p' "$tmp/wrk.out")
    [ -n "$non2xx" ] && errs="${errs:+$errs,}non2xx$non2xx"
    stop_server
    echo "$1 $2 $3 $4 ${rps:-0} ${errs:--} $r ${busy:-0}" >>"$results"
    printf '  %-5s T=%s C=%-6s run %s: %10s req/s  errors %-28s RSS/conn %8s KiB  compilers %s\n' \
        "$1" "$2" "$3" "$4" "${rps:-0}" "${errs:--}" "$r" "${busy:-0}" >&2
}

printf 'http_vs_nginx: running (%s per wrk run); each run as it ends:\n' "$duration" >&2
for t in $threads_list; do
    for c in $conns_list; do
        run=1
        while [ "$run" -le "$runs" ]; do
            if [ $((run % 2)) -eq 1 ]; then
                one_run weave "$t" "$c" "$run"
                one_run nginx "$t" "$c" "$run"
            else
                one_run nginx "$t" "$c" "$run"
                one_run weave "$t" "$c" "$run"
            fi
            run=$((run + 1))
        done
    done
done

# ---- the tables ------------------------------------------------------------

# median SERVER THREADS CONNS FIELD: the median of FIELD (5: req/s, 7:
# KiB/conn) over the runs.
median() {
    awk -v s="$1" -v t="$2" -v c="$3" -v f="$4" '$1 == s && $2 == t && $3 == c && $f != "-" { print $f }' \
        "$results" | sort -g |
        awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2];
              else printf "%.2f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

errors_of() { # server threads conns: every run's errors, "-" if none
    awk -v s="$1" -v t="$2" -v c="$3" '$1 == s && $2 == t && $3 == c && $6 != "-" { e = e (e ? ";" : "") $6 }
        END { print e ? e : "-" }' "$results"
}

nginx_v=$(nginx -v 2>&1 | sed 's/.*nginx\///')
wrk_v=$(wrk -v 2>&1 | head -n 1 | awk '{ print $2 }')
printf '\nhttp_vs_nginx: demo/http_hello (%s, %s switch) vs nginx %s, wrk %s -t%s -d%s, %s\n' \
    "$build" "$(sed -n 's/^WEAVE_CONTEXT:[A-Z]*=//p' "$build/CMakeCache.txt" 2>/dev/null || true)" \
    "$nginx_v" "$wrk_v" "$wrk_threads" "$duration" "$scheme"
printf 'parameters: threads %s, connections %s, %s runs each alternating (medians below), fd limit %s,\n' \
    "$threads_list" "$conns_list" "$runs" "$(ulimit -n)"
printf '            %s cores; RSS/conn = (VmRSS with C idle keep-alive connections - before) / C\n\n' \
    "$(nproc)"
printf '%-7s %-6s %12s %12s %9s %14s %14s  %s\n' "threads" "conns" "weave req/s" "nginx req/s" \
    "w/nginx" "weave KiB/conn" "nginx KiB/conn" "errors (weave | nginx)"
for t in $threads_list; do
    for c in $conns_list; do
        w=$(median weave "$t" "$c" 5)
        n=$(median nginx "$t" "$c" 5)
        wr=$(median weave "$t" "$c" 7)
        nr=$(median nginx "$t" "$c" 7)
        awk -v t="$t" -v c="$c" -v w="$w" -v n="$n" -v wr="$wr" -v nr="$nr" \
            -v e="$(errors_of weave "$t" "$c") | $(errors_of nginx "$t" "$c")" 'BEGIN {
            printf "%-7s %-6s %12.0f %12.0f %8.3fx %14s %14s  %s\n", t, c, w, n,
                (n > 0 ? w / n : 0), wr, nr, e }'
    done
done

set -- $threads_list
if [ $# -gt 1 ]; then
    first=$1
    printf '\nscaling: requests/s at each thread count over requests/s at %s (medians)\n' "$first"
    printf '%-7s %-6s %12s %9s %12s %9s\n' "threads" "conns" "weave req/s" "x" "nginx req/s" "x"
    for t in $threads_list; do
        for c in $conns_list; do
            awk -v t="$t" -v c="$c" -v w="$(median weave "$t" "$c" 5)" \
                -v w1="$(median weave "$first" "$c" 5)" -v n="$(median nginx "$t" "$c" 5)" \
                -v n1="$(median nginx "$first" "$c" 5)" 'BEGIN {
                printf "%-7s %-6s %12.0f %8.2fx %12.0f %8.2fx\n", t, c, w, w / w1, n, n / n1 }'
        done
    done
fi
printf '\nevery run: server threads conns run req/s errors KiB/conn compilers-running\n'
cat "$results"
