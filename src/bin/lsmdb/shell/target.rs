//! What the shell talks to: a database it opened itself, or a running `lsmdb serve`
//! (`--connect`), through the server's HTTP API. The commands, their replies and completion
//! are the same either way; only where the bytes go differs.

use anyhow::Context;

use crate::client::{Client, ServerArgs, Span};
use crate::text::Entries;

/// How many keys completion offers at most: it must answer at once, and a longer list does
/// not help a person choose.
pub const KEY_CANDIDATES: usize = 64;

pub enum Target {
    Local(lsmdb::Db),
    Remote(Client),
}

pub type Entry = anyhow::Result<(Vec<u8>, Vec<u8>)>;

impl Target {
    /// What the prompt and the banner name: the directory, or the server's `host:port`.
    pub fn name(&self, dir: &str) -> String {
        match self {
            Target::Local(_) => format!("lsmdb:{dir}"),
            Target::Remote(client) => client.authority().to_string(),
        }
    }

    pub fn get(&self, key: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
        match self {
            Target::Local(db) => db.get(key).context("cannot get"),
            Target::Remote(client) => client.get(key),
        }
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> anyhow::Result<()> {
        match self {
            Target::Local(db) => db.put(key, value).context("cannot put"),
            Target::Remote(client) => client.put(key, value),
        }
    }

    /// Deletes `key` and says whether it was there.
    pub fn delete(&self, key: &[u8]) -> anyhow::Result<bool> {
        match self {
            Target::Local(db) => {
                // Read first to report whether the key existed, as the CLI does; this
                // process holds the write lock, so nothing changes it in between.
                let existed = db.get(key).context("cannot delete")?.is_some();
                db.delete(key).context("cannot delete")?;
                Ok(existed)
            }
            Target::Remote(client) => client.delete(key),
        }
    }

    pub fn write(&self, entries: &Entries) -> anyhow::Result<()> {
        match self {
            Target::Local(db) => db
                .write(&crate::text::to_batch(entries))
                .context("cannot apply the batch"),
            Target::Remote(client) => client.write(entries),
        }
    }

    /// Entries from `start` to `end` (none: no end), read as they are consumed.
    pub fn range<'a>(
        &'a self,
        start: &'a [u8],
        end: Option<&'a [u8]>,
    ) -> anyhow::Result<Box<dyn Iterator<Item = Entry> + 'a>> {
        match self {
            Target::Local(db) => {
                let iter = match end {
                    Some(end) => db.range(start, end),
                    None => db.range_from(start),
                }
                .context("cannot read the range")?;
                Ok(Box::new(iter.map(|e| e.context("cannot read the range"))))
            }
            Target::Remote(client) => Ok(Box::new(client.range(Span {
                start,
                end,
                prefix: b"",
            }))),
        }
    }

    /// Up to [`KEY_CANDIDATES`] keys starting with `prefix`; none when they cannot be read
    /// (completion has nowhere to show an error).
    pub fn keys(&self, prefix: &[u8]) -> Vec<Vec<u8>> {
        match self {
            Target::Local(db) => match db.prefix(prefix) {
                Ok(iter) => iter
                    .take(KEY_CANDIDATES)
                    .map_while(Result::ok)
                    .map(|(k, _)| k)
                    .collect(),
                Err(_) => Vec::new(),
            },
            Target::Remote(client) => {
                let span = Span {
                    start: b"",
                    end: None,
                    prefix,
                };
                match client.range_page(&span, KEY_CANDIDATES) {
                    Ok((entries, _)) => entries.into_iter().map(|(k, _)| k).collect(),
                    Err(_) => Vec::new(),
                }
            }
        }
    }

    pub fn stats(&self) -> anyhow::Result<lsmdb::Stats> {
        match self {
            Target::Local(db) => Ok(db.stats()),
            Target::Remote(client) => client.stats(),
        }
    }

    /// Why writes are refused, when they are: a database opened read-only beside another
    /// writer. A server takes writes.
    pub fn read_only_reason(&self) -> Option<String> {
        let Target::Local(db) = self else {
            return None;
        };
        if !db.is_read_only() {
            return None;
        }
        Some(
            db.read_only_reason()
                .unwrap_or_else(|| "another process holds the write lock".to_string()),
        )
    }

    /// Closes a database this process opened, reporting what `Drop` could not.
    pub fn close(self) -> anyhow::Result<()> {
        match self {
            Target::Local(db) => db.close().context("closing the database failed"),
            Target::Remote(_) => Ok(()),
        }
    }
}

/// Opens what `--connect` or `--db` names: a server is asked for its figures first, so a
/// wrong address or token fails now rather than at the first command.
pub fn open(server: &ServerArgs, globals: &crate::cli::Globals) -> anyhow::Result<Target> {
    match server.client()? {
        Some(client) => {
            client
                .stats()
                .with_context(|| format!("cannot use lsmdb serve at {}", client.authority()))?;
            Ok(Target::Remote(client))
        }
        None => lsmdb::Db::open_or_read_only(&globals.dir, globals.options())
            .map(Target::Local)
            .with_context(|| format!("cannot open database {}", globals.dir.display())),
    }
}
