#!/usr/bin/env bash
# Load test of `lsmdb serve` with wrk, on loopback only, bounded in time.
#
# Measures requests/s and latency for GET /keys and PUT /keys with 1, 8 and 64 connections
# (release build, default sync mode: every PUT is durable before its reply), and the same GET
# load against examples/http_baseline.rs (a bare tiny_http server answering with a constant),
# then prints a Markdown table with the lsmdb/baseline ratio for GET. Any socket error or non-2xx
# reply fails the run. Each figure is the median of ROUNDS runs (by requests/s, with that
# run's p99), lsmdb and the baseline taking turns, so that load from other processes on the
# machine skews the ratio less.
#
# Usage: scripts/http-load.sh            # 3 rounds of 5 s runs, about 2.5 minutes in all
#        DURATION=10 ROUNDS=5 THREADS=4 scripts/http-load.sh
#        LSMDB_BIN=old/lsmdb BASELINE_BIN=old/http_baseline scripts/http-load.sh
#                                       # binaries built elsewhere (say, before a change)
# Needs wrk (Debian: apt-get install wrk).
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-3}
THREADS=${THREADS:-$(nproc)}
((THREADS >= 2)) || THREADS=2
CONNECTIONS=(1 8 64)
VALUE=$(printf '0123456789%.0s' {1..10}) # 100 bytes, the baseline's value

command -v wrk >/dev/null || { echo "error: wrk not found (apt-get install wrk)" >&2; exit 2; }
cd "$(dirname "$0")/.."
# shellcheck source=scripts/wrk-lib.sh
source scripts/wrk-lib.sh
if [ -z "${LSMDB_BIN:-}" ] || [ -z "${BASELINE_BIN:-}" ]; then
    cargo build --release --quiet --bin lsmdb --example http_baseline
fi
LSMDB_BIN=${LSMDB_BIN:-target/release/lsmdb}
BASELINE_BIN=${BASELINE_BIN:-target/release/examples/http_baseline}
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Starts a server in the background with its stderr in $1.
start() {
    local log=$1
    shift
    "$@" >/dev/null 2>"$log" &
    pids+=($!)
}

# Prints the address from the start-up line in log $1.
address() {
    local log=$1
    for _ in $(seq 100); do
        if addr=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*' "$log"); then
            echo "${addr#http://}"
            return
        fi
        sleep 0.1
    done
    echo "error: no start-up line in $log" >&2
    cat "$log" >&2
    exit 2
}

put_script "$work/put.lua"

# Default settings, INFO log included (one line per request, to a file here).
start "$work/lsmdb.log" "$LSMDB_BIN" --db "$work/db" serve --addr 127.0.0.1:0 \
    --threads "$THREADS"
start "$work/baseline.log" "$BASELINE_BIN" 127.0.0.1:0 "$THREADS"
lsmdb_addr=$(address "$work/lsmdb.log")
base_addr=$(address "$work/baseline.log")
curl -sf -X PUT "http://$lsmdb_addr/keys" -d "{\"key\":\"bench\",\"value\":\"$VALUE\"}" >/dev/null

echo "wrk, median of $ROUNDS runs of ${DURATION}s, $THREADS server worker threads, $(nproc) cores, loopback" >&2
printf '| route | connections | lsmdb req/s | lsmdb p99 | baseline req/s | baseline p99 | lsmdb/baseline |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for c in "${CONNECTIONS[@]}"; do
    : >"$work/l" && : >"$work/b"
    for _ in $(seq "$ROUNDS"); do
        load "$c" "http://$lsmdb_addr/keys?key=bench" >>"$work/l"
        load "$c" "http://$base_addr/keys?key=bench" >>"$work/b"
    done
    read -r l_rps l_p99 < <(median <"$work/l")
    read -r b_rps b_p99 < <(median <"$work/b")
    ratio=$(awk -v a="$l_rps" -v b="$b_rps" 'BEGIN {printf "%.2f", a / b}')
    printf '| GET /keys | %d | %d | %s | %d | %s | %s |\n' "$c" "$l_rps" "$l_p99" "$b_rps" "$b_p99" "$ratio"
done
for c in "${CONNECTIONS[@]}"; do
    : >"$work/l"
    for _ in $(seq "$ROUNDS"); do
        load "$c" "http://$lsmdb_addr/keys" "$work/put.lua" >>"$work/l"
    done
    read -r l_rps l_p99 < <(median <"$work/l")
    printf '| PUT /keys (sync always) | %d | %d | %s | | | |\n' "$c" "$l_rps" "$l_p99"
done
