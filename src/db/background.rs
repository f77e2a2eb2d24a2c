//! The loop both background threads (flush and compaction) run: wait for work, do it until
//! none is left, retry a full disk with backoff, and stop writes on any other failure.
//!
//! Out of space while writing a table, nothing is lost: a flush keeps its memtable and WAL
//! (writers stall on the full memtables meanwhile), a compaction keeps its inputs. Any
//! other failure may have left a write or sync half done, so writes stop for good (a
//! reopen recovers).
//!
//! Each run of failures is logged (the `log` crate, target `lsmdb`) once at WARN as it
//! starts and once at INFO when the work succeeds again, not once per retry.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{BgState, DbInner};
use crate::error::{Error, Result};

const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Runs until the engine shuts down. `has_work` is asked, under the background lock, whether
/// there is work (it may consume a request); `step` does one unit of it and says whether
/// there may be more. `what` names the work in the reason writes stopped.
pub(super) fn run(
    db: &DbInner,
    what: &str,
    mut has_work: impl FnMut(&DbInner, &mut BgState) -> bool,
    mut step: impl FnMut(&DbInner) -> Result<bool>,
) {
    let mut backoff = FIRST_BACKOFF;
    // Since when, and how often, the work has failed for lack of space.
    let mut failing: Option<(Instant, u64)> = None;
    loop {
        {
            let mut bg = db.bg.lock();
            loop {
                if db.shutting_down.load(Ordering::Acquire) {
                    return;
                }
                if !db.stopped_flag.load(Ordering::Acquire) && has_work(db, &mut bg) {
                    break;
                }
                db.bg_cv.wait(&mut bg);
            }
        }
        while !db.shutting_down.load(Ordering::Acquire) && !db.stopped_flag.load(Ordering::Acquire)
        {
            let result = step(db);
            if result.is_ok()
                && let Some((since, failures)) = failing.take()
            {
                log::info!(
                    target: "lsmdb",
                    "{what} in {} works again, after {failures} attempts failed for lack of \
                     space over {:.1} s",
                    db.dir.display(),
                    since.elapsed().as_secs_f64()
                );
            }
            match result {
                Ok(true) => backoff = FIRST_BACKOFF,
                Ok(false) => break,
                Err(Error::Closed) => return,
                Err(e) if e.is_no_space() => {
                    match &mut failing {
                        Some((_, failures)) => *failures += 1,
                        None => {
                            log::warn!(
                                target: "lsmdb",
                                "{what} in {} failed: {e}; retrying until space is freed \
                                 (writes stall if the memtables fill meanwhile)",
                                db.dir.display()
                            );
                            failing = Some((Instant::now(), 1));
                        }
                    }
                    db.counters
                        .background_errors
                        .fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
                Err(e) => {
                    db.stop_writes(format!("{what} failed: {e}"));
                    break;
                }
            }
        }
    }
}
