//! The loop both background threads (flush and compaction) run: wait for work, do it until
//! none is left, retry a full disk with backoff, and stop writes on any other failure.
//!
//! Out of space while writing a table, nothing is lost: a flush keeps its memtable and WAL
//! (writers stall on the full memtables meanwhile), a compaction keeps its inputs. Any
//! other failure may have left a write or sync half done, so writes stop for good (a
//! reopen recovers).

use std::sync::atomic::Ordering;
use std::time::Duration;

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
            match step(db) {
                Ok(true) => backoff = FIRST_BACKOFF,
                Ok(false) => break,
                Err(Error::Closed) => return,
                Err(e) if e.is_no_space() => {
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
