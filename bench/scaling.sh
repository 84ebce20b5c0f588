#!/bin/sh
# scaling.sh - does a second scheduler help? demo/http_hello with 1 and 2
# schedulers (--threads) against nginx with 1 and 2 worker processes, under
# wrk, alternating; prints each server's requests/s and its speed-up.
#
# It is bench/http_vs_nginx.sh with --threads "1 2", one concurrency and
# no memory figures; any of that script's options may follow and win
# (bench/http_vs_nginx.sh --help).
#
# usage: bench/scaling.sh [--conns "1000"] [--runs N] [--duration D] [...]
#
# On a machine with two cores, wrk runs on the same two cores as the
# servers: two schedulers compete with wrk for them, so the speed-up is
# bounded by what wrk leaves over, for nginx alike.
set -eu
exec "$(dirname "$0")/http_vs_nginx.sh" --threads "1 2" --conns 1000 --no-rss "$@"
