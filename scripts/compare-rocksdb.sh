#!/usr/bin/env bash
# Runs RocksDB's own db_bench and `lsmdb bench` on the same db_bench workloads with the same
# parameters, engine after engine (the first engine alternating round by round), and prints
# the median ops/s of each, lsmdb's ratio to RocksDB, and each engine's peak RSS.
#
# Usage: scripts/compare-rocksdb.sh [--lsmdb PATH] [--num N] [--rounds R] [--value-size B]
#                                   [--sync-num N]
#
# Workloads (db_bench's meanings; 16-byte keys, no compression, each engine's defaults but
# the same 8 MiB block cache):
#   fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom (--seek_nexts=100), one thread,
#     writes not synced (db_bench's default) -- the set peerbench's compare.sh runs;
#   readwhilewriting after fillseq: one reader thread, one writer as fast as it can;
#   fillrandom --sync=1 with 1 and with 4 threads (--sync-num writes per thread): every write
#     synced before it returns, four writers sharing syncs (group commit).
# It also measures the disk's own rate of synced small writes (dd oflag=dsync), the scale a
# one-thread --sync run is bound to (rates on a virtual disk move a lot from minute to minute).
set -euo pipefail
cd "$(dirname "$0")/.."
lsmdb=""; num=300000; rounds=3; value=100; sync_num=""
while [ $# -gt 0 ]; do
  case $1 in
    --lsmdb) lsmdb=$2; shift 2 ;;
    --num) num=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --value-size) value=$2; shift 2 ;;
    --sync-num) sync_num=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
# db_bench's fillsync writes num/1000; a hundredth keeps a synced run to seconds.
sync_num=${sync_num:-$(( num / 100 > 100 ? num / 100 : 100 ))}

need() { command -v "$1" >/dev/null || { apt-get update -qq && apt-get install -y -qq "$2" >/dev/null; }; }
need db_bench rocksdb-tools
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }
if [ -z "$lsmdb" ]; then
  cargo build --release -q
  lsmdb=target/release/lsmdb
fi
lsmdb=$(realpath "$lsmdb")

work=$(mktemp -d /tmp/compare-rocksdb.XXXXXX); trap 'rm -rf "$work"' EXIT
res=$work/results

# One set of workloads on one engine. Args: engine, set name, benchmarks to report, label
# suffix, then the engine's own arguments. Appends "engine label ops" and "rss engine set KiB".
run() {
  local engine=$1 set=$2 keep=",$3," suffix=$4; shift 4
  rm -rf "$work/db"
  if [ "$engine" = rocksdb ]; then
    /usr/bin/time -f %M -o "$work/rss" db_bench --db="$work/db" --key_size=16 --value_size="$value" \
      --compression_type=none "$@" >"$work/out" 2>&1 || { echo "db_bench failed ($set):" >&2; tail -5 "$work/out" >&2; }
    sed -n "s/^RocksDB: *version /RocksDB /p" "$work/out" | head -1 >"$work/rocksdb-version"
    awk -v keep="$keep" -v s="$suffix" '/ops\/sec/ { for (i = 1; i < NF; i++)
      if ($(i+1) == "ops/sec" && index(keep, "," $1 ",")) print "rocksdb", $1 s, $i }' "$work/out" >>"$res"
  else
    /usr/bin/time -f %M -o "$work/rss" "$lsmdb" bench --db "$work/db" --key-size 16 --value-size "$value" \
      --json "$@" >"$work/out" 2>"$work/err" || { echo "lsmdb bench failed ($set):" >&2; tail -5 "$work/err" >&2; }
    python3 - "$work/out" "$keep" "$suffix" >>"$res" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    if line.startswith("{"):
        r = json.loads(line)
        if "," + r["benchmark"] + "," in sys.argv[2]:
            print("lsmdb", r["benchmark"] + sys.argv[3], r["ops_per_sec"])
PY
  fi
  echo "rss $engine $set $(tail -1 "$work/rss")" >>"$res"
}

main=fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom
rocksdb_sets() {
  run rocksdb main "$main" "" --benchmarks="$main" --num="$num" --seek_nexts=100 --threads=1
  run rocksdb rww readwhilewriting "" --benchmarks=fillseq,readwhilewriting --num="$num" --threads=1
  run rocksdb sync1 fillrandom _sync_t1 --benchmarks=fillrandom --num="$sync_num" --sync=1 --threads=1
  run rocksdb sync4 fillrandom _sync_t4 --benchmarks=fillrandom --num="$sync_num" --sync=1 --threads=4
}
lsmdb_sets() {
  run lsmdb main "$main" "" --benchmarks "$main" --num "$num" --seek-nexts 100 --threads 1
  run lsmdb rww readwhilewriting "" --benchmarks fillseq,readwhilewriting --num "$num" --threads 1
  run lsmdb sync1 fillrandom _sync_t1 --benchmarks fillrandom --num "$sync_num" --sync --threads 1
  run lsmdb sync4 fillrandom _sync_t4 --benchmarks fillrandom --num "$sync_num" --sync --threads 4
}

for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds" >&2
  if [ $((r % 2)) = 1 ]; then rocksdb_sets; lsmdb_sets; else lsmdb_sets; rocksdb_sets; fi
done

# The disk's own rate of synced writes: 2000 writes of 128 bytes, each O_DSYNC, into a file
# already written and synced, so that no write changes the file's size or extents (appends
# that grow the file also commit metadata at every sync, which a WAL writing into
# preallocated space does not).
head -c 1048576 /dev/zero >"$work/dsync" && sync "$work/dsync"
dsync=$(dd if=/dev/zero of="$work/dsync" bs=128 count=2000 oflag=dsync conv=notrunc 2>&1 | awk '/copied/ { print $(NF-3) }')

python3 - "$res" "$num" "$sync_num" "$rounds" "$dsync" "$(cat "$work/rocksdb-version" 2>/dev/null)" <<'PY'
import statistics, sys
from collections import defaultdict
res, num, sync_num, rounds, dsync_secs, version = sys.argv[1:7]
ops, rss = defaultdict(list), defaultdict(list)
for line in open(res):
    f = line.split()
    if f[0] == "rss":
        if f[3].isdigit():
            rss[(f[1], f[2])].append(int(f[3]))
    else:
        ops[(f[0], f[1].rstrip(":"))].append(float(f[2]))
rows = [("fillseq", "main"), ("fillrandom", "main"), ("overwrite", "main"), ("readrandom", "main"),
        ("readseq", "main"), ("seekrandom", "main"), ("readwhilewriting", "rww"),
        ("fillrandom_sync_t1", "sync1"), ("fillrandom_sync_t4", "sync4")]
med = lambda xs: statistics.median(xs) if xs else 0.0
print(f"{version or 'RocksDB'} (Debian rocksdb-tools) vs lsmdb; num {num}, sync runs {sync_num} writes "
      f"per thread; medians of {rounds} rounds")
print(f"{'workload':<20}{'rocksdb ops/s':>14}{'lsmdb ops/s':>13}{'lsmdb/rocksdb':>15}"
      f"{'rocksdb RSS':>13}{'lsmdb RSS':>11}")
worst = float("inf")
for name, s in rows:
    r, l = med(ops[("rocksdb", name)]), med(ops[("lsmdb", name)])
    ratio = l / r if r else 0.0
    worst = min(worst, ratio)
    mib = lambda e: f"{med(rss[(e, s)]) / 1024:.0f} MiB" if rss[(e, s)] else "-"
    print(f"{name:<20}{r:>14.0f}{l:>13.0f}{ratio:>15.2f}{mib('rocksdb'):>13}{mib('lsmdb'):>11}")
print(f"worst ratio {worst:.2f}")
print("RSS: peak resident set of the process that ran the row's set of workloads (median of rounds)")
try:
    print(f"disk: {2000 / float(dsync_secs):.0f} synced 128-byte writes/s (dd oflag=dsync), "
          "the scale of a one-thread --sync fill")
except ValueError:
    print("disk: dd oflag=dsync probe failed")
PY
