#!/usr/bin/env bash
# The long form of RELIABILITY.md T17 (issue 16, "It must show" 2): N rounds, each a fresh
# group of three `lsmdb serve --cluster` processes on loopback with five client threads
# putting, getting and deleting three keys (unique values, every call and return timed)
# while the leader is killed with SIGKILL and restarted, paused with SIGSTOP past its lease,
# and cut off from the others. Every key's history is checked for linearizability
# (tests/cluster/linearizable.rs), every acknowledged write must be readable after healing,
# and the three nodes' data must be identical. The default `cargo test` runs 2 rounds.
#
#   scripts/cluster-chaos.sh [N]     default 50 rounds, about 5 s each
#
# Prints the totals: rounds, leader changes, operations, unknown outcomes (503
# "outcome":"unknown" or no answer), violations, lost acknowledged writes, diverged nodes.
# Exits non-zero on any violation, lost write or divergence.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-50}"
LSMDB_CHAOS_ROUNDS="$rounds" cargo test --release --quiet --test cluster -- \
    --exact chaos::replicated_history_is_linearizable --nocapture 2>&1 |
    grep -E "^chaos|round .*key|panicked|FAILED|test result" || true
test "${PIPESTATUS[0]}" -eq 0
