#!/usr/bin/env bash
# Runs each cargo-fuzz target (RELIABILITY.md T13) for a given time, one after another,
# starting from seeds cut from a real database. Prints each target's execution count.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      default: 60 s, every target
#
# The toolchain is stable; cargo-fuzz needs nightly flags (-Zsanitizer), which
# RUSTC_BOOTSTRAP=1 allows. Crashes land in fuzz/artifacts/<target>/ and fail the script.
# A malloc over 128 MiB counts as a crash: no length field may size an allocation.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(wal sstable manifest batch_json)
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz

# Seeds: the files of a small database made by the CLI.
lsmdb="${LSMDB_BIN:-$root/target/release/lsmdb}"
[ -x "$lsmdb" ] || (cd "$root" && cargo build --release --quiet --bin lsmdb)
seeds="$root/fuzz/seeds"
if [ ! -d "$seeds" ]; then
    db="$(mktemp -d)"
    for i in $(seq 1 300); do printf 'key%04d\tvalue %d %s\n' "$i" "$i" "$(printf 'x%.0s' $(seq 1 $((i % 40))))"; done > "$db.tsv"
    "$lsmdb" --db "$db" batch "$db.tsv" >/dev/null
    "$lsmdb" --db "$db" delete key0007 >/dev/null
    "$lsmdb" --db "$db" compact >/dev/null
    "$lsmdb" --db "$db" put after compact >/dev/null
    echo '{"keys":["a","b"],"values":["1",null]}' | "$lsmdb" --db "$db" batch - >/dev/null
    mkdir -p "$seeds"/{wal,sstable,manifest,batch_json}
    cp "$db"/*.wal "$seeds/wal/"
    cp "$db"/*.sst "$seeds/sstable/"
    cp "$db"/MANIFEST-* "$seeds/manifest/"
    cp "$db.tsv" "$seeds/batch_json/lines.tsv"
    echo '{"keys":["a","b","c"],"values":["1",null,"3"]}' > "$seeds/batch_json/body.json"
    rm -rf "$db" "$db.tsv"
fi

mkdir -p "$root/fuzz/logs"
cd "$root/fuzz"
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    log="logs/$t.log"
    echo "== $t: $secs s"
    cargo fuzz run "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=128 \
        -print_final_stats=1 >"$log" 2>&1 || { tail -40 "$log"; echo "== $t FAILED"; exit 1; }
    grep -E "stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb" "$log" | sed "s/^/   $t /"
done
