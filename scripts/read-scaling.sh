#!/usr/bin/env bash
# Do reads collapse as data grows? Random-read throughput after filling N keys, for a small
# and a large N (default 100K and 1M), alternating, several rounds; prints the medians and
# their ratio (issue 3 asks for at most 2x). Each round fills a fresh database with
# fillrandom and then runs readrandom (about 63% of the keys read exist, as in db_bench).
#
# Usage: scripts/read-scaling.sh [--small N] [--large N] [--rounds R] [--lsmdb PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
small=100000; large=1000000; rounds=3; lsmdb=""
while [ $# -gt 0 ]; do
  case $1 in
    --small) small=$2; shift 2 ;;
    --large) large=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --lsmdb) lsmdb=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
if [ -z "$lsmdb" ]; then
  cargo build --release -q
  lsmdb=target/release/lsmdb
fi
res=$(mktemp); trap 'rm -f "$res"' EXIT
one() {
  "$lsmdb" bench --benchmarks fillrandom,readrandom --num "$1" --json --quiet |
    python3 -c 'import json,sys
for l in sys.stdin:
    r = json.loads(l)
    if r["benchmark"] == "readrandom":
        print(sys.argv[1], r["ops_per_sec"], r["found"], r["ops"])' "$1" >>"$res"
}
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  if [ $((r % 2)) = 1 ]; then one "$small"; one "$large"; else one "$large"; one "$small"; fi
done
python3 - "$res" "$small" "$large" <<'PY'
import statistics, sys
res, small, large = sys.argv[1:4]
ops = {small: [], large: []}
for line in open(res):
    n, rate, found, total = line.split()
    ops[n].append(float(rate))
s, l = statistics.median(ops[small]), statistics.median(ops[large])
print(f"readrandom after fillrandom, medians of {len(ops[small])} rounds")
print(f"{small:>9} keys: {s:>10.0f} ops/s   (rounds: {', '.join(f'{x:.0f}' for x in ops[small])})")
print(f"{large:>9} keys: {l:>10.0f} ops/s   (rounds: {', '.join(f'{x:.0f}' for x in ops[large])})")
print(f"slowdown {s / l:.2f}x (small / large)")
PY
