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
[ ${#targets[@]} -gt 0 ] || targets=(wal sstable manifest batch_json http_request)
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
    echo '{"keys":["a","b","c"],"values":["1",null,"3"]}' > "$seeds/batch_json/body.json"
    rm -rf "$db" "$db.tsv"
fi

# Seeds for the server: one request per route, a pipelined pair, and a few broken ones.
if [ ! -d "$seeds/http_request" ]; then
    h="$seeds/http_request"
    mkdir -p "$h"
    crlf() { printf '%s\r\n' "$@"; }
    { crlf 'PUT /keys HTTP/1.1' 'Host: x' 'Content-Length: 26' ''; printf '{"key":"k1","value":"v 1"}'; } >"$h/put"
    crlf 'GET /keys?key=k1 HTTP/1.1' 'Host: x' '' >"$h/get"
    crlf 'GET /keys?key=a%20b%2Bc%E2%9C%93 HTTP/1.0' '' >"$h/get_encoded"
    crlf 'DELETE /keys?key=k1 HTTP/1.1' 'Host: x' '' >"$h/delete"
    crlf 'GET /keys/range?start_key=a&end_key=z HTTP/1.1' 'Host: x' '' >"$h/range"
    { crlf 'POST /keys/batch HTTP/1.1' 'Host: x' 'Content-Length: 38' ''; printf '{"keys":["a","b"],"values":["1","2"]}'; } >"$h/batch"
    { crlf 'POST /keys/batch HTTP/1.1' 'Transfer-Encoding: chunked' '' '5'; printf '{"key\r\n0\r\n\r\n'; } >"$h/chunked"
    crlf 'GET /health HTTP/1.1' '' 'GET /stats HTTP/1.1' '' 'GET /metrics HTTP/1.1' '' >"$h/pipelined"
    crlf 'PATCH /keys HTTP/1.1' 'Content-Length: x' '' >"$h/bad_length"
    crlf 'GET /keys HTTP/2.0' '' >"$h/version"
    crlf 'PUT /keys HTTP/1.1' 'Expect: 100-continue' 'Content-Length: 99999999' '' >"$h/expect"
    crlf 'GET /keys/range?start_key=a&end_key=z&limit=2 HTTP/1.1' '' >"$h/range_limit"
    { crlf 'POST /keys/get HTTP/1.1' 'Content-Length: 11' ''; printf '{"key":"a"}'; } >"$h/get_by_body"
    { crlf 'PUT /keys HTTP/1.1' 'Content-Length: 5' 'Transfer-Encoding: chunked' '' '0' ''; crlf 'DELETE /keys?key=a HTTP/1.1' ''; } >"$h/smuggle"
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
