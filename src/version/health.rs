//! Whether reads are failing for a reason that is not the caller's: a table that cannot be
//! read (EIO, a permission, a file gone) or is damaged. A server's health check reports it
//! (`Stats::reads_failing`), so a load balancer can stop sending reads that would fail.
//!
//! A table counts as failing from the read that failed on it until a later read of it
//! succeeds, or it leaves the tree (a compaction replaced it).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;

use crate::error::Error;
use crate::filename::{self, FileType};

#[derive(Default)]
pub(crate) struct ReadHealth {
    /// Whether `failing` holds anything: lets every successful read skip the mutex.
    any: AtomicBool,
    /// Table number to the error its last read gave.
    failing: Mutex<BTreeMap<u64, String>>,
}

impl ReadHealth {
    /// Records a read of table `number` that failed with `e`, if `e` is the table's fault.
    pub(crate) fn failed(&self, number: u64, e: &Error) {
        if matches!(e, Error::Io { .. } | Error::Corruption { .. }) {
            self.failing.lock().insert(number, e.to_string());
            self.any.store(true, Ordering::Release);
        }
    }

    /// Records a failed read that may have come from any table: the error's path says which.
    pub(crate) fn failed_somewhere(&self, e: &Error) {
        let path = match e {
            Error::Io { path, .. } | Error::Corruption { path, .. } => path,
            _ => return,
        };
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if let Some(FileType::Table(number)) = filename::parse(name) {
            self.failed(number, e);
        }
    }

    /// Table `number` was read without error, or has left the tree.
    pub(crate) fn cleared(&self, number: u64) {
        if self.any.load(Ordering::Acquire) {
            let mut failing = self.failing.lock();
            failing.remove(&number);
            self.any.store(!failing.is_empty(), Ordering::Release);
        }
    }

    /// Why reads are failing, if they are: the first failing table's error, and how many
    /// tables fail.
    pub(crate) fn reason(&self) -> Option<String> {
        if !self.any.load(Ordering::Acquire) {
            return None;
        }
        let failing = self.failing.lock();
        let (_, first) = failing.iter().next()?;
        Some(match failing.len() {
            1 => format!("reads fail: {first}"),
            n => format!("reads of {n} tables fail, first: {first}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn a_failing_table_is_reported_until_it_reads_again() {
        let health = ReadHealth::default();
        assert_eq!(health.reason(), None);
        let eio = Error::io(
            "read block of",
            Path::new("db/000012.sst"),
            std::io::Error::from_raw_os_error(libc::EIO),
        );
        health.failed_somewhere(&eio);
        health.failed_somewhere(&Error::InvalidArgument("the caller's fault".into()));
        let reason = health.reason().unwrap();
        assert!(
            reason.contains("000012.sst") && reason.contains("os error 5"),
            "{reason}"
        );
        health.cleared(13);
        assert!(health.reason().is_some());
        health.cleared(12);
        assert_eq!(health.reason(), None);
    }
}
