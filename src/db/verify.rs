//! `Db::check`: verifies every checksum of the live files of an open database, with the
//! same table and WAL readers `lsmdb check` uses, stopping at the first damage.

use super::{CheckReport, DbInner, Mode};
use crate::error::{Error, IoContext, Result};
use crate::filename;
use crate::wal::{self, OnDamage};

impl DbInner {
    /// Reads every block of every live table and every record of every live WAL, checking
    /// each checksum.
    pub(crate) fn check(&self) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        let version = self.sv.load().version.clone();
        for f in version.levels.iter().flatten() {
            let table = f.table()?;
            let verified = table.verify()?;
            if let Some(damage) = verified.damage.into_iter().next() {
                return Err(damage);
            }
            report.table_entries += verified.entries;
            report.tables += 1;
            report.bytes += f.size;
        }
        let log_number = self.versions.lock().log_number();
        let fs = self.opts.fs.as_ref();
        let names = fs.list_dir(&self.dir).ctx("list directory", &self.dir)?;
        let wals = filename::live_wals(&names, log_number);
        for (i, &number) in wals.iter().enumerate() {
            let path = filename::wal_path(&self.dir, number);
            let replayed = wal::read(fs, &path, OnDamage::Fail, |_| Ok(()))?;
            // The writer cut every torn tail at its open, so damage at the end of a WAL is
            // real, except in the newest as a secondary sees it: a record being written.
            if let Some(offset) = replayed.torn_at
                && (i + 1 != wals.len() || self.mode == Mode::ReadWrite)
            {
                return Err(Error::corruption(
                    &path,
                    offset,
                    "damaged record at the end of the WAL",
                ));
            }
            report.wal_files += 1;
            report.wal_records += replayed.records;
            report.bytes += replayed.valid_len;
        }
        Ok(report)
    }
}
