//! The server's typed error: why it could not start, or could not shut down cleanly.

use std::net::SocketAddr;

/// Every error of [`start`](super::start) and [`Running::shutdown`](super::Running::shutdown).
/// A request's failure is not one: the client gets its status and `{"error": ...}`, and the
/// server goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A [`Config`](super::Config) setting is out of range, or a [`Token`](super::Token) is
    /// empty.
    #[error("{0}")]
    InvalidConfig(String),

    /// The listener's address could not be read.
    #[error("cannot read the listening address")]
    Listener(#[source] std::io::Error),

    /// The HTTP server could not start on the listener.
    #[error("cannot start the HTTP server on {addr}")]
    Start {
        addr: SocketAddr,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Shutdown's grace period ran out while a request still held the database; the
    /// database closes when that request lets go of it.
    #[error("the shutdown grace period is up and a request still holds the database")]
    StillInUse,

    /// Closing the database after the last request failed.
    #[error("closing the database failed")]
    Close(#[source] crate::Error),

    /// Stopping the cluster node after the last request failed.
    #[cfg(feature = "cluster")]
    #[error("stopping the cluster node failed")]
    Node(#[source] crate::cluster::Error),
}
