//! The state machine's database behind a swappable slot, so a snapshot install can replace
//! it while readers come and go.
//!
//! A reader takes a lease (an `Arc<Db>`) for one read and drops it after. To replace the
//! database, the installer empties the slot (new leases wait, then get a retryable
//! [`Error::Unavailable`]), waits until the last lease is back, closes the old database
//! (its directory is about to be swapped, see `swap.rs`) and later puts the new one in.
//! A read never sees a database that is being replaced under it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::Db;
use arc_swap::ArcSwapOption;
use parking_lot::{Condvar, Mutex};

use super::error::{Error, Result};

/// How long an install waits for readers to give their leases back.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

pub(crate) struct DataSlot {
    db: ArcSwapOption<Db>,
    changed: Mutex<()>,
    cv: Condvar,
}

impl DataSlot {
    pub(crate) fn new(db: Db) -> DataSlot {
        DataSlot {
            db: ArcSwapOption::from_pointee(db),
            changed: Mutex::new(()),
            cv: Condvar::new(),
        }
    }

    /// The database for one read or write, waiting up to `wait` while it is being replaced.
    /// Blocking: for callers outside the runtime (or with `wait` zero).
    pub(crate) fn lease(&self, wait: Duration) -> Result<Arc<Db>> {
        if let Some(db) = self.db.load_full() {
            return Ok(db);
        }
        let deadline = Instant::now() + wait;
        let mut guard = self.changed.lock();
        loop {
            if let Some(db) = self.db.load_full() {
                return Ok(db);
            }
            if self.cv.wait_until(&mut guard, deadline).timed_out() {
                return self.db.load_full().ok_or_else(|| {
                    Error::Unavailable(
                        "the state machine is being replaced by a snapshot".to_string(),
                    )
                });
            }
        }
    }

    /// Empties the slot and returns the database once no lease on it is left.
    pub(crate) async fn take(&self) -> Result<Db> {
        let Some(mut db) = self.db.swap(None) else {
            return Err(Error::Internal(
                "the state machine's database is already out".into(),
            ));
        };
        let deadline = Instant::now() + DRAIN_WAIT;
        let mut pause = Duration::from_millis(1);
        loop {
            match Arc::try_unwrap(db) {
                Ok(db) => return Ok(db),
                Err(shared) if Instant::now() < deadline => {
                    db = shared;
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(shared) => {
                    // Put it back: better a node that keeps serving than one without data.
                    self.put_arc(shared);
                    return Err(Error::Unavailable(format!(
                        "readers held the state machine for over {DRAIN_WAIT:?}"
                    )));
                }
            }
        }
    }

    /// Empties the slot at once, for closing: leases still out keep the database open
    /// until they are dropped.
    pub(crate) fn take_now(&self) -> Option<Arc<Db>> {
        self.db.swap(None)
    }

    pub(crate) fn put(&self, db: Db) {
        self.put_arc(Arc::new(db));
    }

    fn put_arc(&self, db: Arc<Db>) {
        self.db.store(Some(db));
        let _g = self.changed.lock();
        self.cv.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_wait_for_a_replacement_and_take_waits_for_leases() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path().join("a"), crate::Options::default()).unwrap();
        db.put(b"k", b"1").unwrap();
        let slot = Arc::new(DataSlot::new(db));
        let held = slot.lease(Duration::ZERO).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let taker = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || rt.block_on(slot.take()).map(|db| db.close()))
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while slot.db.load().is_some() {
            assert!(Instant::now() < deadline, "take() never emptied the slot");
            std::thread::yield_now();
        }
        // While the lease is held the database stays readable through it.
        assert_eq!(held.get(b"k").unwrap().as_deref(), Some(&b"1"[..]));
        assert!(matches!(
            slot.lease(Duration::from_millis(10)),
            Err(Error::Unavailable(_))
        ));
        drop(held);
        taker.join().unwrap().unwrap().unwrap();
        let waiter = {
            let slot = Arc::clone(&slot);
            std::thread::spawn(move || {
                slot.lease(Duration::from_secs(10))
                    .map(|db| db.path().to_path_buf())
            })
        };
        slot.put(Db::open(dir.path().join("b"), crate::Options::default()).unwrap());
        assert_eq!(waiter.join().unwrap().unwrap(), dir.path().join("b"));
    }
}
