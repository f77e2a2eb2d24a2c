//! RELIABILITY.md T1: a child process puts and deletes (values 1 B to 64 KiB) in the
//! default sync mode, reporting each acknowledgement; the parent SIGKILLs it at a random
//! moment (sometimes while it is still opening), reopens, and finds exactly the state
//! before the cycle plus every acknowledged write, and perhaps the one in flight: no lost
//! write, no phantom value, no deleted key come back, the newest value winning.
//!
//! The default run does 20 cycles on one directory; `LSMDB_CRASH_CYCLES=500 cargo test
//! --release --test crash -- --ignored --exact kill9_acked::kill9_loop_long --nocapture`
//! (or scripts/crashtest.sh) runs a long loop.

use crate::crash_harness::child;

#[test]
fn kill9_loses_no_acknowledged_write() {
    let (acked, compacted) = child::kill_loop("puts", 20, 1);
    assert!(acked > 20, "the children got some writes done: {acked}");
    // Issue 3 asks for kills while compactions run: tables below L0 prove they did.
    assert!(
        compacted > 0,
        "no cycle reopened to tables below L0: compaction never ran"
    );
}

#[test]
#[ignore = "long run: LSMDB_CRASH_CYCLES (default 200) SIGKILL cycles"]
fn kill9_loop_long() {
    let cycles = child::cycles(200);
    let (acked, compacted) = child::kill_loop("puts", cycles, 2);
    eprintln!(
        "crash_kill9_acked: {cycles} SIGKILL cycles, {acked} acknowledged writes, 0 lost, \
         {compacted} cycles reopened to compacted tables"
    );
}
