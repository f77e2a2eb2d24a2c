//! The durability rules openraft relies on, checked across a simulated power cut
//! (`FaultFileSystem`: whatever was not synced is gone) or a reopen.

use std::sync::Arc;
use std::time::Duration;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::{RaftLogReader, RaftSnapshotBuilder};

use super::{entry, log_id, membership_entry, runtime};
use crate::cluster::{Command, LogStore, PurgeGate, StateMachine, Vote};
use crate::fault::FaultFileSystem;
use crate::{Db, Options};

fn faulty(fs: &Arc<FaultFileSystem>) -> Options {
    Options {
        fs: fs.clone(),
        ..Options::default()
    }
}

/// Kills `store` as a crash would (nothing it does from now on reaches the disk, not even
/// the sync of a clean close), then cuts the power: only what was synced before survives.
fn power_cut<T>(fs: &Arc<FaultFileSystem>, store: T) {
    fs.crash();
    drop(store);
    fs.power_loss().unwrap();
    fs.restart();
}

#[test]
fn appended_entries_and_the_vote_survive_a_power_cut() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let mut store = LogStore::open(&dir.path().join("raft"), None, faulty(&fs)).unwrap();
    rt.block_on(async {
        // A log starts at index 0 (openraft's first membership entry).
        let entries: Vec<_> = (0..=4)
            .map(|i| entry(1, i, Some(Command::put(vec![i as u8 + 1], b"v".to_vec()))))
            .collect();
        // `blocking_append` returns once append's callback reported the entries durable.
        store.blocking_append(entries).await.unwrap();
        store.save_vote(&Vote::new(3, 2)).await.unwrap();
    });
    power_cut(&fs, store);
    let mut store = LogStore::open(&dir.path().join("raft"), None, faulty(&fs)).unwrap();
    rt.block_on(async {
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_log_id, Some(log_id(1, 4)));
        let got = store.try_get_log_entries(0..=4).await.unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(3, 2)));
    });
}

#[test]
fn truncate_and_purge_leave_no_hole_and_survive_reopen() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raft");
    let mut store = LogStore::open(&path, None, Options::default()).unwrap();
    rt.block_on(async {
        store
            .blocking_append((0..=10).map(|i| entry(1, i, None)))
            .await
            .unwrap();
        store.truncate(log_id(1, 7)).await.unwrap();
        assert_eq!(
            store.get_log_state().await.unwrap().last_log_id,
            Some(log_id(1, 6))
        );
        store.purge(log_id(1, 3)).await.unwrap();
        let got = store.try_get_log_entries(0..100).await.unwrap();
        let indexes: Vec<u64> = got.iter().map(|e| e.log_id.index).collect();
        assert_eq!(indexes, vec![4, 5, 6]);
        // A new term's entries continue where the truncation left off.
        store
            .blocking_append((7..=8).map(|i| entry(2, i, None)))
            .await
            .unwrap();
    });
    drop(store);
    let mut store = LogStore::open(&path, None, Options::default()).unwrap();
    rt.block_on(async {
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
        assert_eq!(state.last_log_id, Some(log_id(2, 8)));
        // Purging past the end (a snapshot beyond the log) leaves an empty log at that point.
        store.purge(log_id(2, 12)).await.unwrap();
        let state = store.get_log_state().await.unwrap();
        assert_eq!(state.last_purged_log_id, Some(log_id(2, 12)));
        assert_eq!(state.last_log_id, Some(log_id(2, 12)));
        assert!(store.try_get_log_entries(0..100).await.unwrap().is_empty());
    });
    drop(store);
    let mut store = LogStore::open(&path, None, Options::default()).unwrap();
    let state = rt.block_on(store.get_log_state()).unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 12)));
}

/// openraft asks for a purge as soon as it has handed a snapshot to the state machine; the
/// log must keep its entries until a snapshot covering them is durable.
#[test]
fn purge_waits_for_a_durable_snapshot() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let gate = PurgeGate::new(Some(2));
    let mut store = LogStore::open(
        &dir.path().join("raft"),
        Some(gate.clone()),
        Options::default(),
    )
    .unwrap();
    rt.block_on(async {
        store
            .blocking_append((0..=6).map(|i| entry(1, i, None)))
            .await
            .unwrap();
        store.purge(log_id(1, 2)).await.unwrap();
        let mut purging = store.clone();
        let purge = tokio::spawn(async move { purging.purge(log_id(1, 5)).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!purge.is_finished(), "purged past the last snapshot");
        assert_eq!(store.try_get_log_entries(3..=5).await.unwrap().len(), 3);
        gate.raise(5);
        purge.await.unwrap().unwrap();
        assert!(store.try_get_log_entries(0..=5).await.unwrap().is_empty());
    });
}

fn read(sm_dir: &std::path::Path, key: &[u8]) -> Option<Vec<u8>> {
    let db = Db::open_read_only(sm_dir.join("data"), Options::default()).unwrap();
    db.get(key).unwrap()
}

/// Data and "applied up to" are written in one synced batch: after a power cut both are
/// there or neither, and an entry applied again after a reopen changes nothing.
#[test]
fn apply_is_atomic_durable_and_idempotent_across_reopen() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let fs = FaultFileSystem::new();
    let open = || StateMachine::open(dir.path(), PurgeGate::new(None), faulty(&fs)).unwrap();
    let mut sm = open();
    let first = entry(1, 1, Some(Command::put(b"k".to_vec(), b"a".to_vec())));
    rt.block_on(async {
        sm.apply([
            first.clone(),
            membership_entry(1, 2, &[1, 2, 3]),
            entry(1, 3, Some(Command::put(b"k".to_vec(), b"b".to_vec()))),
        ])
        .await
        .unwrap();
    });
    power_cut(&fs, sm);
    let mut sm = open();
    rt.block_on(async {
        let (applied, membership) = sm.applied_state().await.unwrap();
        assert_eq!(applied, Some(log_id(1, 3)));
        assert_eq!(membership.log_id(), &Some(log_id(1, 2)));
        // Applying entry 1 again must not take `k` back to "a".
        sm.apply([first.clone()]).await.unwrap();
        assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    });
    drop(sm);
    assert_eq!(read(dir.path(), b"k").as_deref(), Some(&b"b"[..]));

    // A crash in the middle of applying entry 4: neither its data nor its log id survive.
    let mut sm = open();
    fs.crash_at_op(fs.ops() + 1);
    let failed = rt.block_on(sm.apply([entry(
        1,
        4,
        Some(Command::put(b"k".to_vec(), b"c".to_vec())),
    )]));
    assert!(failed.is_err());
    power_cut(&fs, sm);
    let mut sm = open();
    assert_eq!(
        rt.block_on(sm.applied_state()).unwrap().0,
        Some(log_id(1, 3))
    );
    drop(sm);
    assert_eq!(read(dir.path(), b"k").as_deref(), Some(&b"b"[..]));
}

/// A snapshot built on one state machine installs on another; a restart that finds the
/// current snapshot ahead of the data (a crash before the directory swap) finishes the
/// install.
#[test]
fn snapshots_install_and_an_interrupted_install_is_finished_at_start() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let mut a = StateMachine::open(&a_dir, PurgeGate::new(None), Options::default()).unwrap();
    let snapshot = rt.block_on(async {
        a.apply([
            membership_entry(1, 1, &[1]),
            entry(1, 2, Some(Command::put(b"x".to_vec(), b"1".to_vec()))),
        ])
        .await
        .unwrap();
        a.get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .unwrap()
    });
    assert_eq!(snapshot.meta.last_log_id, Some(log_id(1, 2)));
    // Applied after the snapshot: not in it.
    rt.block_on(a.apply([entry(
        1,
        3,
        Some(Command::put(b"y".to_vec(), b"2".to_vec())),
    )]))
    .unwrap();

    let mut b = StateMachine::open(&b_dir, PurgeGate::new(None), Options::default()).unwrap();
    rt.block_on(b.install_snapshot(&snapshot.meta, snapshot.snapshot.clone()))
        .unwrap();
    let applied = rt.block_on(b.applied_state()).unwrap().0;
    assert_eq!(applied, Some(log_id(1, 2)));
    drop(b);
    assert_eq!(read(&b_dir, b"x").as_deref(), Some(&b"1"[..]));
    assert_eq!(read(&b_dir, b"y"), None);

    // Node c: its current snapshot is newer than its data, as after a crash mid-install.
    let c_dir = dir.path().join("c");
    let c = StateMachine::open(&c_dir, PurgeGate::new(None), Options::default()).unwrap();
    c.shared()
        .adopt_snapshot(&snapshot.meta, snapshot.snapshot.path())
        .unwrap();
    drop(c);
    let gate = PurgeGate::new(None);
    let mut c = StateMachine::open(&c_dir, gate.clone(), Options::default()).unwrap();
    assert_eq!(
        rt.block_on(c.applied_state()).unwrap().0,
        Some(log_id(1, 2))
    );
    drop(c);
    assert_eq!(read(&c_dir, b"x").as_deref(), Some(&b"1"[..]));
}
