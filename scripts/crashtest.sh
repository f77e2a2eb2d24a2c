#!/usr/bin/env bash
# The long crash runs (RELIABILITY.md T1, T2, T11 and the long T6): a child process is
# SIGKILLed again and again while it writes, and a verifier checks every reopen against the
# acknowledged history (no lost write, no phantom value, no deleted key come back, no
# partial batch). The default `cargo test` runs short versions of T1, T2 and T6.
#
#   scripts/crashtest.sh [CYCLES]        default 200 SIGKILL cycles per loop
set -euo pipefail
cd "$(dirname "$0")/.."
cycles="${1:-200}"
run() {
    cargo test --release --quiet --test "$1" -- --ignored --exact "$2" --nocapture 2>&1 |
        grep -E "SIGKILL cycles|kills,|panicked|FAILED|test result" || true
    test "${PIPESTATUS[0]}" -eq 0
}
LSMDB_CRASH_CYCLES="$cycles" run crash kill9_acked::kill9_loop_long
LSMDB_CRASH_CYCLES="$cycles" run crash batch_atomic::batch_loop_long
LSMDB_CRASH_CYCLES="$(( (cycles + 3) / 4 ))" run crash stress_expected_state::stress_with_kills
run faults power_loss::a_power_cut_loses_nothing_synced_long
