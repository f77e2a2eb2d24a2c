//! Replication: a group of lsmdb nodes that agree on every write through Raft (openraft
//! 0.9), with automatic failover. Behind the cargo feature `cluster`.
//!
//! A [`Node`] runs one member: its openraft instance on a tokio runtime owned by a
//! background thread, a Raft RPC server on its own address and worker pool, and a blocking
//! API ([`Node::write`], [`Node::read`], membership, [`Node::status`]) that HTTP workers call
//! from their own threads.
//!
//! # A node's directory
//!
//! ```text
//! DIR/raft/        lsmdb database: the Raft log and vote (log_store.rs)
//! DIR/data/        lsmdb database: the user's data, the state machine; an ordinary
//!                  database that `lsmdb dump --db DIR/data` reads (reserved keys aside)
//! DIR/data.new/    only during a snapshot install, or after a crash in one (swap.rs)
//! DIR/snapshots/   snap-<index>-<id>/: checkpoints of DIR/data; tmp-*/: being made
//! ```
//! The formats are in docs/FORMAT.md ("Cluster node directory").
//!
//! # What is guaranteed
//! - A write acknowledged as success is committed (on a majority's disks) and applied; it
//!   survives any minority of nodes failing. A write whose fate cannot be known is reported
//!   as [`Error::OutcomeUnknown`], never as success.
//! - [`Consistency::Linearizable`] reads (the default for servers) see every write
//!   acknowledged before the read began: the leader confirms its leadership with a quorum
//!   (`ensure_linearizable`); a follower asks the leader for a read index and waits until it
//!   has applied that far. [`Consistency::Stale`] reads are local and may lag.
//! - Durability rules (each in the module that keeps it): the log's append is acknowledged
//!   to openraft only once synced, the vote is synced before `save_vote` returns, applied
//!   entries are written with their log id in one synced batch, the log is never purged
//!   past a durable snapshot, and snapshot metadata comes from the snapshot's own contents.
//!
//! # Modules
//! `types` (log payload, nodes, encoding), `reserved` (keys the cluster keeps in the user's
//! database), `log_store`, `state_machine`, `snapshot` (snapshot directories), `swap`
//! (replacing `DIR/data`), `data_slot` (the swappable database handle), `transfer` (snapshots
//! in chunks), `network` (outgoing RPC), `rpc_server` (incoming RPC), `read_index` (one
//! leadership check for the reads that arrive together), `faults` (the test-only partition
//! switch), `node` (start, stop, the runtime), `api` (the blocking calls), `status` (status
//! and metrics).

mod api;
mod data_slot;
mod error;
mod faults;
mod log_store;
mod network;
mod node;
mod read_index;
mod reserved;
mod rpc;
mod rpc_server;
mod snapshot;
mod state_machine;
mod status;
mod swap;
mod transfer;
mod types;

#[cfg(test)]
mod tests;

pub use api::{Consistency, ReadLease};
pub use error::{Error, Result};
pub use faults::{FAULTS_ENV, faults_enabled_by_env};
pub use log_store::{LogStore, PurgeGate};
pub use node::{Node, NodeConfig};
pub use reserved::{RESERVED_PREFIX, is_reserved_key, without_reserved};
pub use snapshot::SnapshotDir;
pub use state_machine::{APPLY_BUCKETS, ApplyCounters, SnapshotBuilder, StateMachine};
pub use status::{FollowerStatus, Metrics, Role, Status};
pub use transfer::{CHUNK_BYTES_RANGE, DEFAULT_CHUNK_BYTES};
pub use types::{
    Applied, ClusterNode, Command, Entry, LogId, NodeId, Op, SnapshotMeta, StoredMembership,
    TypeConfig, Vote,
};
