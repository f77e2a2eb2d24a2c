#!/usr/bin/env bash
# RELIABILITY.md T14: fill the WAL to its cap (about the memtable size, 32 MiB), SIGKILL the
# writer, and time the reopen; once with no history and once after four memtables' worth
# of tables. Prints the times; nothing is asserted on them.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --release --quiet --test crash -- --ignored --exact \
    recovery_time_bounded::reopen_after_a_kill_with_a_full_wal --nocapture 2>&1 | grep -E "recovery_time_bounded|panicked|test result"
