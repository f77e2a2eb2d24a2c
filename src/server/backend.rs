//! What the routes read and write through: this process's own database, or (feature
//! `cluster`) a member of a replicated group, which agrees on every write with its group
//! before it answers (`cluster.rs`). The routes call the same few methods either way; how
//! fresh a read is, where a write goes and what the admin routes do live behind them.

use super::http::{HttpError, Query, Reply};
use super::json::{Column, Encoding};
use super::metrics::Metrics;
use super::stream;

pub(super) enum Backend {
    Local(crate::Db),
    #[cfg(feature = "cluster")]
    Cluster(super::cluster::Clustered),
}

/// How fresh a read must be: `?consistency=linearizable` (the default) or `stale`. A local
/// database is always up to date, so it serves both the same way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Consistency {
    #[default]
    Linearizable,
    Stale,
}

impl Consistency {
    pub fn from_query(query: &Query) -> Result<Consistency, HttpError> {
        match query.optional("consistency") {
            None | Some(b"linearizable") => Ok(Consistency::Linearizable),
            Some(b"stale") => Ok(Consistency::Stale),
            Some(_) => Err(HttpError::bad_request(
                "query parameter \"consistency\" must be \"linearizable\" or \"stale\"",
            )),
        }
    }
}

impl Backend {
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    pub fn get(&self, key: &[u8], consistency: Consistency) -> Result<Option<Vec<u8>>, HttpError> {
        match self {
            Backend::Local(db) => db.get(key).map_err(HttpError::engine),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.get(key, consistency),
        }
    }

    pub fn put(&self, key: &[u8], value: &[u8]) -> Result<(), HttpError> {
        match self {
            Backend::Local(db) => db.put(key, value).map_err(HttpError::engine),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.write(crate::cluster::Command::put(key, value)),
        }
    }

    pub fn delete(&self, key: &[u8]) -> Result<(), HttpError> {
        match self {
            Backend::Local(db) => db.delete(key).map_err(HttpError::engine),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.write(crate::cluster::Command::delete(key)),
        }
    }

    /// Applies the parsed batch body atomically: a put per string value, a delete per
    /// `null`. The columns are dropped once the batch is made, so the body, its columns and
    /// the batch are never all in memory at once.
    pub fn batch(&self, keys: Column, values: Column) -> Result<usize, HttpError> {
        let count = keys.len();
        match self {
            Backend::Local(db) => {
                // One WAL record and one sync for the whole batch.
                let batch = super::json::json_batch(&keys, &values);
                drop((keys, values));
                db.write(&batch).map_err(HttpError::engine)?;
            }
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => {
                let command = c.command(&keys, &values);
                drop((keys, values));
                c.write(command)?;
            }
        }
        Ok(count)
    }

    /// `{"results":[...]}` for `[start, end)` (to the last key when `end` is `None`),
    /// streamed (see `stream.rs`).
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    pub fn range(
        &self,
        start: &[u8],
        end: Option<&[u8]>,
        limit: Option<usize>,
        encoding: Encoding,
        consistency: Consistency,
    ) -> Result<Reply, HttpError> {
        match self {
            Backend::Local(db) => {
                let iter = range_of(db, start, end).map_err(HttpError::engine)?;
                stream::range_reply(iter, limit, encoding).map_err(HttpError::engine)
            }
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.range(start, end, limit, encoding, consistency),
        }
    }

    /// A checkpoint (`Db::checkpoint`) of the data in `dest`. A cluster node checkpoints
    /// its own replica once it holds every write acknowledged before the call.
    pub fn checkpoint(&self, dest: &std::path::Path) -> Result<(), HttpError> {
        match self {
            Backend::Local(db) => db.checkpoint(dest).map_err(HttpError::engine),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.checkpoint(dest),
        }
    }

    /// The engine's figures (and in a cluster, the node's view of its group).
    pub fn stats(&self) -> Result<Reply, HttpError> {
        match self {
            Backend::Local(db) => {
                let stats = serde_json::to_value(db.stats())
                    .map_err(|e| HttpError::new(500, format!("cannot encode stats: {e}")))?;
                Ok(Reply::json(200, &stats))
            }
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.stats(),
        }
    }

    /// 200 while the engine takes writes and serves reads (and in a cluster, a leader is
    /// known); 503 with the reason otherwise.
    pub fn health(&self) -> Reply {
        match self {
            Backend::Local(db) => {
                let stats = db.stats();
                health_reply(stats.writes_stopped.or(stats.reads_failing))
            }
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.health(),
        }
    }

    pub fn metrics(&self, http: &Metrics) -> Reply {
        match self {
            Backend::Local(db) => Reply::metrics(http.render(&db.stats())),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.metrics(http),
        }
    }

    /// The routes under `/cluster/`, which only a cluster node has.
    #[cfg_attr(not(feature = "cluster"), allow(unused_variables))]
    pub fn admin(&self, request: &mut tiny_http::Request, path: &str) -> Result<Reply, HttpError> {
        match self {
            Backend::Local(_) => Err(HttpError::new(
                404,
                format!("no route for {path}: this server is not a cluster node"),
            )),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.admin(request, path),
        }
    }

    /// Closes the database (in a cluster, stops the node first).
    pub fn close(self) -> Result<(), super::Error> {
        match self {
            Backend::Local(db) => db.close().map_err(super::Error::Close),
            #[cfg(feature = "cluster")]
            Backend::Cluster(c) => c.close(),
        }
    }
}

pub(super) fn health_reply(problem: Option<String>) -> Reply {
    match problem {
        None => Reply::json(200, &serde_json::json!({"health": "true"})),
        Some(reason) => Reply::json(
            503,
            &serde_json::json!({"health": "false", "error": reason}),
        ),
    }
}

/// The entries of `db` from `start`, before `end` if given.
pub(super) fn range_of(
    db: &crate::Db,
    start: &[u8],
    end: Option<&[u8]>,
) -> crate::Result<crate::DbIterator> {
    match end {
        Some(end) => db.range(start, end),
        None => db.range_from(start),
    }
}
