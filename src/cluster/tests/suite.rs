//! openraft's storage conformance suite on the log store and state machine, each test on a
//! fresh node directory. (About 9 s, 4 of them the suite's own sleeps after purges.)

use openraft::StorageError;
use openraft::testing::{StoreBuilder, Suite};

use crate::cluster::{LogStore, NodeId, PurgeGate, StateMachine, TypeConfig};

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, tempfile::TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().unwrap();
        let opts = crate::Options::default();
        let log = LogStore::open(&dir.path().join("raft"), None, opts.clone()).unwrap();
        let sm = StateMachine::open(dir.path(), PurgeGate::new(None), opts).unwrap();
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}
