//! How a server serves: its limits, its deadlines and the optional token.

use std::thread;
use std::time::Duration;

use super::auth::Token;
use super::error::Error;

/// How [`start`](super::start) serves. `Config::default()` is what `lsmdb serve` does
/// without options; change what you need with the setter named after each field:
///
/// ```
/// let config = lsmdb::server::Config::default()
///     .threads(4)
///     .token(Some(lsmdb::server::Token::new("s3cret")?));
/// assert_eq!(config.threads, 4);
/// # Ok::<(), lsmdb::server::Error>(())
/// ```
///
/// New settings may come in later versions, so it cannot be built as a struct literal.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Requests answered at once; the others wait their turn (default: the number of cores,
    /// at least 2).
    pub threads: usize,
    /// When set, every route but `/health` needs `Authorization: Bearer <token>` (default
    /// none).
    pub token: Option<Token>,
    /// Largest request body accepted; a larger one gets 413 (default 16 MiB).
    pub max_body: usize,
    /// Connections served at once; beyond, a new connection gets 503 and is closed
    /// (default 1024).
    pub max_connections: usize,
    /// How long a connection may stay idle between requests, a request head may take to
    /// arrive, and any one read or write may wait (default 10 s).
    pub timeout: Duration,
    /// How long a request body may take to arrive in full, and a reply to be taken in full,
    /// however steadily the client trickles (default 30 s).
    pub body_timeout: Duration,
    /// On a cluster node ([`start_cluster`](super::start_cluster)): how long a request may
    /// wait for the group (a leader, a quorum, a commit) before it is answered with 503
    /// (default 5 s).
    pub request_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            threads: thread::available_parallelism().map_or(2, |n| n.get().max(2)),
            token: None,
            max_body: 16 << 20,
            max_connections: 1024,
            timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(5),
        }
    }
}

crate::options::setters! {
    Config {
        threads: usize,
        token: Option<Token>,
        max_body: usize,
        max_connections: usize,
        timeout: Duration,
        body_timeout: Duration,
        request_timeout: Duration,
    }
}

impl Config {
    /// Checks every setting, naming the first one out of range.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("threads", self.threads > 0),
            ("max_connections", self.max_connections > 0),
            ("timeout", !self.timeout.is_zero()),
            ("body_timeout", !self.body_timeout.is_zero()),
            ("request_timeout", !self.request_timeout.is_zero()),
        ];
        match positive.into_iter().find(|(_, ok)| !ok) {
            Some((name, _)) => Err(Error::InvalidConfig(format!("{name} must be positive"))),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_out_of_range_are_named() {
        assert!(Config::default().validate().is_ok());
        let err = Config::default().threads(0).validate().unwrap_err();
        assert_eq!(err.to_string(), "threads must be positive");
        let err = Config::default()
            .timeout(Duration::ZERO)
            .validate()
            .unwrap_err();
        assert_eq!(err.to_string(), "timeout must be positive");
    }
}
