//! The partition switch, for tests only: drops Raft traffic between this node and chosen
//! nodes, in both directions (its outgoing calls to them fail at once as unreachable; their
//! calls to it are refused). It exists only on a node started with fault injection on
//! (`NodeConfig::fault_injection`, which the environment variable `LSMDB_TEST_FAULTS=1`
//! turns on); elsewhere the route that sets it answers 404 and nothing is ever dropped.

use std::collections::BTreeSet;

use parking_lot::RwLock;

use super::error::{Error, Result};
use super::types::NodeId;

/// The environment variable that turns fault injection on at start.
pub const FAULTS_ENV: &str = "LSMDB_TEST_FAULTS";

/// Whether the environment asks for fault injection (`LSMDB_TEST_FAULTS=1`).
pub fn faults_enabled_by_env() -> bool {
    std::env::var(FAULTS_ENV).is_ok_and(|v| v == "1")
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    enabled: bool,
    blocked: RwLock<BTreeSet<NodeId>>,
}

impl Faults {
    pub(crate) fn new(enabled: bool) -> Faults {
        Faults {
            enabled,
            blocked: RwLock::new(BTreeSet::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether traffic with `peer` is dropped.
    pub(crate) fn blocks(&self, peer: NodeId) -> bool {
        self.enabled && self.blocked.read().contains(&peer)
    }

    /// Drops traffic with exactly `peers` from now on (empty heals).
    pub(crate) fn set(&self, peers: BTreeSet<NodeId>) -> Result<()> {
        if !self.enabled {
            return Err(Error::InvalidArgument(format!(
                "fault injection is off on this node (start it with {FAULTS_ENV}=1)"
            )));
        }
        *self.blocked.write() = peers;
        Ok(())
    }

    pub(crate) fn blocked(&self) -> BTreeSet<NodeId> {
        self.blocked.read().clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_switch_does_nothing_unless_enabled() {
        let off = Faults::new(false);
        assert!(off.set([2].into()).is_err());
        assert!(!off.blocks(2));
        let on = Faults::new(true);
        on.set([2, 3].into()).unwrap();
        assert!(on.blocks(2) && on.blocks(3) && !on.blocks(1));
        on.set(BTreeSet::new()).unwrap();
        assert!(!on.blocks(2));
    }
}
