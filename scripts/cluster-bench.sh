#!/usr/bin/env bash
# Throughput of a three-node `lsmdb serve --cluster` group against one `lsmdb serve`, and
# failover time, on loopback (issue 16, "It must show" 3; docs/BENCHMARKS.md).
#
# 1. wrk against GET /keys (a linearizable read, the default) and PUT /keys (distinct keys,
#    100-byte values) at 1, 8 and 64 connections, on one node and on the group's leader; the
#    median of ROUNDS runs of DURATION seconds, one node and the group taking turns.
# 2. Failover, FAILOVERS times: SIGKILL the leader, then PUT to the other two nodes in turn
#    until one acknowledges; the time from the kill to that first acknowledged write. The
#    killed node is restarted and caught up before the next one. Prints the median.
#
# Usage: scripts/cluster-bench.sh             # about 3 minutes
#        DURATION=10 ROUNDS=3 FAILOVERS=10 ELECTION_MS=1000 scripts/cluster-bench.sh
#        LSMDB_BIN=path/to/lsmdb scripts/cluster-bench.sh
# Needs wrk and curl.
set -euo pipefail

DURATION=${DURATION:-5}
ROUNDS=${ROUNDS:-1}
FAILOVERS=${FAILOVERS:-10}
ELECTION_MS=${ELECTION_MS:-1000}
HEARTBEAT_MS=${HEARTBEAT_MS:-100}
THREADS=${THREADS:-$(nproc)}
((THREADS >= 2)) || THREADS=2
CONNECTIONS=(1 8 64)
VALUE=$(printf '0123456789%.0s' {1..10})
TOKEN=bench-cluster-token

command -v wrk >/dev/null || { echo "error: wrk not found (apt-get install wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "error: curl not found" >&2; exit 2; }
cd "$(dirname "$0")/.."
# shellcheck source=scripts/wrk-lib.sh
source scripts/wrk-lib.sh
if [ -z "${LSMDB_BIN:-}" ]; then
    cargo build --release --quiet --bin lsmdb
fi
LSMDB_BIN=${LSMDB_BIN:-target/release/lsmdb}
work=$(mktemp -d)
declare -A pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Ports the kernel says are free now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

one_port=$(free_port)
declare -A http raft
for id in 1 2 3; do
    http[$id]=127.0.0.1:$(free_port)
    raft[$id]=127.0.0.1:$(free_port)
done

# Starts (or restarts) node $1 of the group.
start_node() {
    local id=$1
    LSMDB_CLUSTER_TOKEN=$TOKEN "$LSMDB_BIN" --db "$work/n$id" serve --cluster --node-id "$id" \
        --addr "${http[$id]}" --raft-addr "${raft[$id]}" --threads "$THREADS" \
        --heartbeat-ms "$HEARTBEAT_MS" --election-timeout-ms "$ELECTION_MS" \
        >/dev/null 2>>"$work/n$id.log" &
    pids[$id]=$!
}

# Waits until $1 answers GET $2 with a 200.
await_200() {
    for _ in $(seq 300); do
        if curl -sf -o /dev/null -H "Authorization: Bearer $TOKEN" "http://$1$2"; then return; fi
        sleep 0.05
    done
    echo "error: http://$1$2 never answered 200" >&2
    exit 2
}

status() {
    curl -sf --max-time 2 -H "Authorization: Bearer $TOKEN" "http://$1/cluster/status"
}

# The leader's id, once node $1 knows one.
leader_of() {
    for _ in $(seq 300); do
        local l
        l=$(status "$1" | python3 -c 'import json,sys; l=json.load(sys.stdin)["leader"]; print(l if l else "")' 2>/dev/null || true)
        if [ -n "$l" ]; then echo "$l"; return; fi
        sleep 0.05
    done
    echo "error: node at $1 knows no leader" >&2
    exit 2
}

# Waits until every node has applied its whole log and all agree.
await_converged() {
    for _ in $(seq 600); do
        local seen=""
        for id in 1 2 3; do
            seen+=$(status "${http[$id]}" | python3 -c 'import json,sys; s=json.load(sys.stdin); print(s["applied_index"], s["last_log_index"], end=";")' 2>/dev/null || echo "down;")
        done
        if python3 -c 'import sys; p=[x for x in sys.argv[1].split(";") if x]; sys.exit(0 if len(p)==3 and len(set(p))==1 and len(set(p[0].split()))==1 else 1)' "$seen"; then
            return
        fi
        sleep 0.05
    done
    echo "error: the group never converged" >&2
    exit 2
}

"$LSMDB_BIN" --db "$work/one" serve --addr "127.0.0.1:$one_port" --threads "$THREADS" \
    >/dev/null 2>"$work/one.log" &
pids[one]=$!
for id in 1 2 3; do start_node "$id"; done
await_200 "127.0.0.1:$one_port" /health
for id in 1 2 3; do await_200 "${http[$id]}" /cluster/status; done
LSMDB_CLUSTER_TOKEN=$TOKEN "$LSMDB_BIN" cluster init "1=${http[1]},2=${http[2]},3=${http[3]}" >/dev/null
leader=$(leader_of "${http[1]}")
one=127.0.0.1:$one_port
lead=${http[$leader]}
for addr in "$one" "$lead"; do
    curl -sf -X PUT "http://$addr/keys" -d "{\"key\":\"bench\",\"value\":\"$VALUE\"}" >/dev/null
done

put_script "$work/put.lua"


echo "wrk, median of $ROUNDS runs of ${DURATION}s, $THREADS server worker threads, $(nproc) cores, loopback; group: heartbeat ${HEARTBEAT_MS} ms, election timeout ${ELECTION_MS} ms, requests to the leader" >&2
printf '| route | connections | one node req/s | one node p99 | 3-node group req/s | group p99 | group/one |\n'
printf '|---|---:|---:|---:|---:|---:|---:|\n'
for route in GET PUT; do
    for c in "${CONNECTIONS[@]}"; do
        : >"$work/o" && : >"$work/g"
        for _ in $(seq "$ROUNDS"); do
            if [ "$route" = GET ]; then
                load "$c" "http://$one/keys?key=bench" >>"$work/o"
                load "$c" "http://$lead/keys?key=bench" >>"$work/g"
            else
                load "$c" "http://$one/keys" "$work/put.lua" >>"$work/o"
                load "$c" "http://$lead/keys" "$work/put.lua" >>"$work/g"
            fi
        done
        read -r o_rps o_p99 < <(median <"$work/o")
        read -r g_rps g_p99 < <(median <"$work/g")
        ratio=$(awk -v a="$g_rps" -v b="$o_rps" 'BEGIN {printf "%.2f", a / b}')
        printf '| %s /keys | %d | %d | %s | %d | %s | %s |\n' "$route" "$c" "$o_rps" "$o_p99" "$g_rps" "$g_p99" "$ratio"
    done
done

# Failover: kill to the first acknowledged write on the new leader.
now_ms() { date +%s%3N; }
: >"$work/failover"
for i in $(seq "$FAILOVERS"); do
    await_converged
    leader=$(leader_of "${http[1]}")
    others=()
    for id in 1 2 3; do [ "$id" = "$leader" ] || others+=("$id"); done
    killed=$(now_ms)
    kill -9 "${pids[$leader]}"
    wait "${pids[$leader]}" 2>/dev/null || true
    n=0
    while :; do
        target=${http[${others[$((n % 2))]}]}
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 -X PUT "http://$target/keys" \
            -d "{\"key\":\"failover$i\",\"value\":\"$n\"}" || true)
        if [ "$code" = 200 ]; then break; fi
        n=$((n + 1))
        if ((n > 2000)); then echo "error: no write acknowledged after failover $i" >&2; exit 1; fi
        sleep 0.01
    done
    took=$(($(now_ms) - killed))
    echo "$took" >>"$work/failover"
    echo "failover $i: node $leader killed, first write acknowledged after $took ms" >&2
    start_node "$leader"
    await_200 "${http[$leader]}" /cluster/status
done
sorted=$(sort -n "$work/failover" | tr '\n' ' ')
med=$(median <"$work/failover")
echo
echo "failover (SIGKILL of the leader to the first acknowledged write), election timeout ${ELECTION_MS} ms: median of $FAILOVERS ${med} ms; all: ${sorted}"
