#!/usr/bin/env bash
# fjall against `lsmdb bench` on the workloads ../shared/peerbench/compare.sh does not run on
# fjall: readwhilewriting (after fillseq: one reader, one writer as fast as it can) and
# fillrandom with every write synced, with 1 and with 4 writer threads. fjall runs through
# scripts/fjall-bench (fjall pinned as in peerbench, no compression, an 8 MiB cache), with the
# meanings `lsmdb bench` gives these workloads. Engine after engine, the first alternating
# round by round; prints the median ops/s of each, lsmdb's ratio, and each one's peak RSS.
#
# Usage: scripts/compare-fjall.sh [--lsmdb PATH] [--num N] [--rounds R] [--sync-num N]
set -euo pipefail
cd "$(dirname "$0")/.."
lsmdb=""; num=300000; rounds=3; sync_num=""
while [ $# -gt 0 ]; do
  case $1 in
    --lsmdb) lsmdb=$2; shift 2 ;;
    --num) num=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --sync-num) sync_num=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
# As scripts/compare-rocksdb.sh: a hundredth of num keeps a synced run to seconds.
sync_num=${sync_num:-$(( num / 100 > 100 ? num / 100 : 100 ))}

[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ -z "$lsmdb" ]; then
  cargo build --release -q
  lsmdb=target/release/lsmdb
fi
lsmdb=$(realpath "$lsmdb")
(cd scripts/fjall-bench && cargo build --release -q)
fjall=$(realpath scripts/fjall-bench/target/release/fjall-bench)

work=$(mktemp -d /tmp/compare-fjall.XXXXXX); trap 'rm -rf "$work"' EXIT
res=$work/results

# One set on one engine. Args: engine, set, benchmark to report, label, then the arguments
# both engines take alike. Appends "engine label ops" and "rss engine set KiB".
run() {
  local engine=$1 set=$2 keep=$3 label=$4; shift 4
  rm -rf "$work/db"
  local bin=$fjall
  [ "$engine" = lsmdb ] && bin="$lsmdb bench --json --key-size 16 --cache-mb 8"
  # shellcheck disable=SC2086
  /usr/bin/time -f %M -o "$work/rss" $bin --db "$work/db" --value-size 100 "$@" \
    >"$work/out" 2>"$work/err" || { echo "$engine failed ($set):" >&2; tail -5 "$work/err" >&2; }
  python3 - "$work/out" "$engine" "$keep" "$label" >>"$res" <<'PY'
import json, sys
out, engine, keep, label = sys.argv[1:5]
for line in open(out):
    if line.startswith("{"):
        r = json.loads(line)
        if r["benchmark"] == keep:
            print(engine, label, r["ops_per_sec"])
PY
  echo "rss $engine $set $(tail -1 "$work/rss")" >>"$res"
}

sets() {
  run "$1" rww readwhilewriting readwhilewriting --benchmarks fillseq,readwhilewriting --num "$num" --threads 1
  run "$1" sync1 fillrandom fillrandom_sync_t1 --benchmarks fillrandom --num "$sync_num" --sync --threads 1
  run "$1" sync4 fillrandom fillrandom_sync_t4 --benchmarks fillrandom --num "$sync_num" --sync --threads 4
}

for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  if [ $((r % 2)) = 1 ]; then sets fjall; sets lsmdb; else sets lsmdb; sets fjall; fi
done

python3 - "$res" "$num" "$sync_num" "$rounds" <<'PY'
import statistics, sys
from collections import defaultdict
res, num, sync_num, rounds = sys.argv[1:5]
ops, rss = defaultdict(list), defaultdict(list)
for line in open(res):
    f = line.split()
    if f[0] == "rss":
        if f[3].isdigit():
            rss[(f[1], f[2])].append(int(f[3]))
    else:
        ops[(f[0], f[1])].append(float(f[2]))
rows = [("readwhilewriting", "rww"), ("fillrandom_sync_t1", "sync1"), ("fillrandom_sync_t4", "sync4")]
med = lambda xs: statistics.median(xs) if xs else 0.0
print(f"fjall 3.1.13 vs lsmdb; num {num}, sync runs {sync_num} writes per thread; medians of {rounds} rounds")
print(f"{'workload':<20}{'fjall ops/s':>12}{'lsmdb ops/s':>13}{'lsmdb/fjall':>13}{'fjall RSS':>11}{'lsmdb RSS':>11}")
worst = float("inf")
for name, s in rows:
    f, l = med(ops[("fjall", name)]), med(ops[("lsmdb", name)])
    ratio = l / f if f else 0.0
    worst = min(worst, ratio)
    mib = lambda e: f"{med(rss[(e, s)]) / 1024:.0f} MiB" if rss[(e, s)] else "-"
    print(f"{name:<20}{f:>12.0f}{l:>13.0f}{ratio:>13.2f}{mib('fjall'):>11}{mib('lsmdb'):>11}")
print(f"worst ratio {worst:.2f}")
PY
