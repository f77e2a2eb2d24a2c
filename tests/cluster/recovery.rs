//! Failures of whole nodes: the leader killed with SIGKILL, a node back with an empty
//! directory, the leader cut off from the others. Each ends with every node holding the
//! same data, byte for byte.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Cluster, PATIENCE, Timing, wait_for};

fn put_ok(cluster: &Cluster, node: u64, key: &str, value: &str) {
    let reply = cluster.put(node, key, value).unwrap();
    assert_eq!(
        reply.status, 200,
        "PUT {key} on node {node}: {}",
        reply.body
    );
}

/// Issue 16, "It must show" 1(a): a new leader within twice the election timeout of the
/// kill, and the killed node, restarted, catches up.
#[test]
fn killing_the_leader_elects_another_and_the_restarted_node_catches_up() {
    let timing = Timing {
        heartbeat_ms: 40,
        election_ms: 800,
        request_ms: 3000,
    };
    let limit = Duration::from_millis(2 * timing.election_ms);
    let mut cluster = Cluster::start(3, timing, &[]);
    let old = cluster.leader();
    for i in 0..20 {
        put_ok(&cluster, 1 + i % 3, &format!("before{i}"), "x");
    }
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != old).collect();

    let killed = Instant::now();
    cluster.kill(old);
    let new = wait_for("a new leader", PATIENCE, || {
        let leader = cluster.status(others[0])?["leader"].as_u64()?;
        (leader != old).then_some(leader)
    });
    let took = killed.elapsed();
    eprintln!("node {old} killed; node {new} leads after {took:?} (limit {limit:?})");
    assert!(others.contains(&new));
    assert!(
        took <= limit,
        "a new leader took {took:?}, over twice the election timeout ({limit:?})"
    );
    for i in 0..20 {
        put_ok(&cluster, new, &format!("after{i}"), "y");
    }

    cluster.spawn(old);
    cluster.await_up(old);
    cluster.leader();
    cluster.assert_identical();
    let got = cluster.get(old, "after19").unwrap();
    assert_eq!(got.body, json!({"key": "after19", "value": "y"}));
}

/// Issue 16, "It must show" 1(b): a node whose directory was emptied comes back through a
/// snapshot, sent in many chunks (16 KiB here), because the leader's log no longer holds
/// what it is missing.
#[test]
fn a_node_back_with_an_empty_directory_catches_up_by_snapshot() {
    let chunk = 16 << 10;
    let mut cluster = Cluster::start(
        3,
        Timing::default(),
        &["--snapshot-chunk-bytes", &chunk.to_string()],
    );
    let leader = cluster.leader();
    let lost = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    // Distinct values that make the snapshot many chunks long.
    let value = |i: usize| format!("{i:04}-{}", "abcdefghijklmnopqrstuvwxyz".repeat(160));
    for i in 0..60 {
        put_ok(&cluster, leader, &format!("key{i:03}"), &value(i));
    }
    cluster.kill(lost);
    std::fs::remove_dir_all(cluster.node_dir(lost)).unwrap();
    for i in 60..120 {
        put_ok(&cluster, leader, &format!("key{i:03}"), &value(i));
    }
    // The leader's log up to its snapshot is gone: entries alone cannot bring the node back.
    let snap = cluster
        .client
        .call(
            "POST",
            &cluster.url(leader, "/cluster/snapshot"),
            Some(br#"{"purge":true}"#),
            true,
        )
        .unwrap();
    assert_eq!(snap.status, 200, "{}", snap.body);
    let snapshot_index = snap.body["snapshot_index"].as_u64().unwrap();
    let status = cluster.status(leader).unwrap();
    assert!(
        status["purged_index"].as_u64() >= Some(snapshot_index),
        "{status}"
    );
    let snapshot_bytes: u64 = std::fs::read_dir(cluster.node_dir(leader).join("snapshots"))
        .unwrap()
        .flatten()
        .flat_map(|d| std::fs::read_dir(d.path()).unwrap().flatten())
        .map(|f| f.metadata().unwrap().len())
        .sum();
    assert!(
        snapshot_bytes > 8 * chunk,
        "the snapshot ({snapshot_bytes} bytes) should be many chunks long"
    );

    cluster.spawn(lost);
    cluster.await_up(lost);
    wait_for("the emptied node installing a snapshot", PATIENCE, || {
        let s = cluster.status(lost)?;
        (s["snapshot_index"].as_u64()? >= snapshot_index).then_some(())
    });
    put_ok(&cluster, leader, "after", "the snapshot");
    cluster.assert_identical();
    let got = cluster.get(lost, "key000").unwrap();
    assert_eq!(got.body["value"], value(0));
    let stale = cluster
        .client
        .call(
            "GET",
            &cluster.url(lost, "/keys?key=after&consistency=stale"),
            None,
            false,
        )
        .unwrap();
    assert_eq!(stale.body["value"], "the snapshot");
}

/// Issue 16, "It must show" 1(c): a leader cut off from the other two acknowledges no
/// write; the majority elects a leader and takes writes; after healing all three agree.
#[test]
fn an_isolated_leader_stops_acknowledging_and_the_majority_goes_on() {
    let timing = Timing {
        heartbeat_ms: 40,
        election_ms: 600,
        request_ms: 1500,
    };
    let cluster = Cluster::start(3, timing, &[]);
    let old = cluster.leader();
    put_ok(&cluster, old, "before", "1");
    let others: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != old).collect();

    cluster.isolate(old);
    // Whatever it answers, the isolated node acknowledges nothing, writes or reads.
    for i in 0..3 {
        let reply = cluster.put(old, &format!("isolated{i}"), "no").unwrap();
        assert_eq!(reply.status, 503, "{}", reply.body);
    }
    let read = cluster.get(old, "before").unwrap();
    assert_eq!(read.status, 503, "{}", read.body);
    let new = cluster.leader_among(&others, PATIENCE);
    assert_ne!(new, old);
    for i in 0..10 {
        put_ok(&cluster, others[i % 2], &format!("majority{i}"), "yes");
    }

    cluster.heal();
    wait_for("the old leader following the new one", PATIENCE, || {
        (cluster.status(old)?["leader"].as_u64()? == new).then_some(())
    });
    cluster.assert_identical();
    let got = cluster.get(old, "majority9").unwrap();
    assert_eq!(got.body["value"], "yes");
}
