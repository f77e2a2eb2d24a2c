//! The HTTP API through a group: the seed's routes answer byte for byte as a single
//! `lsmdb serve` does (writes sent to followers, which forward them), and what only a
//! group has: reserved keys, the per-write limit, stale reads, no quorum, an unknown
//! outcome, the admin routes and the metrics.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::binary::http::{Conn, Server};
use crate::harness::{Cluster, PATIENCE, Timing, wait_for};

/// The requests of the README's examples and some it refuses: (method, target, body).
fn script() -> Vec<(&'static str, String, Option<String>)> {
    let big = "ß\"\\\u{1}".repeat(40_000);
    let mut s: Vec<(&str, String, Option<String>)> = vec![
        (
            "PUT",
            "/keys".into(),
            Some(r#"{"key": "user:1", "value": "Ada"}"#.into()),
        ),
        ("GET", "/keys?key=user:1".into(), None),
        ("GET", "/keys?key=missing".into(), None),
        (
            "POST",
            "/keys/batch".into(),
            Some(r#"{"keys": ["user:2", "user:3"], "values": ["Grace", ""]}"#.into()),
        ),
        (
            "GET",
            "/keys/range?start_key=user:1&end_key=user:9".into(),
            None,
        ),
        (
            "GET",
            "/keys/range?start_key=user:&end_key=user;&limit=2".into(),
            None,
        ),
        (
            "POST",
            "/keys/get".into(),
            Some(r#"{"key": "user:2"}"#.into()),
        ),
        ("DELETE", "/keys?key=user:1".into(), None),
        (
            "POST",
            "/keys/delete".into(),
            Some(r#"{"key": "user:2"}"#.into()),
        ),
        (
            "POST",
            "/keys/batch".into(),
            Some(r#"{"keys": ["user:3"], "values": [null]}"#.into()),
        ),
        ("GET", "/keys/range?start_key=a&end_key=z".into(), None),
        ("GET", "/keys".into(), None),
        (
            "PUT",
            "/keys".into(),
            Some(r#"{"key": "", "value": "x"}"#.into()),
        ),
        (
            "POST",
            "/keys/batch".into(),
            Some(r#"{"keys": [], "values": []}"#.into()),
        ),
        ("GET", "/keys/range?start_key=b&end_key=a".into(), None),
        ("GET", "/nope".into(), None),
        ("PATCH", "/keys".into(), None),
    ];
    let body = json!({"key": "big", "value": big}).to_string();
    s.push(("PUT", "/keys".into(), Some(body)));
    s.push(("GET", "/keys?key=big".into(), None));
    s.push(("GET", "/keys/range?start_key=b&end_key=c".into(), None));
    // Prefix ranges and base64, both ways. The empty prefix is every key: the group's
    // reserved keys (FF FF FF FF ...) are past all of them, and must not show.
    let b64 = r#"{"key": "/w==", "value": "AAE=", "encoding": "base64"}"#;
    s.push(("PUT", "/keys".into(), Some(b64.into())));
    s.push(("GET", "/keys?key=%FF&encoding=base64".into(), None));
    s.push(("GET", "/keys/range?prefix=".into(), None));
    s.push(("GET", "/keys/range?prefix=&encoding=base64".into(), None));
    s.push(("GET", "/keys/range?prefix=b&limit=1".into(), None));
    s
}

#[test]
fn the_seed_routes_answer_through_a_group_as_a_single_node_does() {
    let dir = tempfile::tempdir().unwrap();
    let single = Server::start(dir.path(), &[]);
    let cluster = Cluster::start(3, Timing::default(), &[]);
    let leader = cluster.leader();
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|&id| id != leader).collect();
    for (i, (method, target, body)) in script().into_iter().enumerate() {
        let body = body.as_deref().map(str::as_bytes);
        let want = single.request(method, &target, body);
        // Writes to one follower, reads from the other: every write is forwarded, every
        // read must see it.
        let node = if method == "GET" {
            followers[1]
        } else {
            followers[0]
        };
        let got = Conn::open(cluster.nodes[&node].http).request(method, &target, &[], body);
        assert_eq!(
            (got.status, got.text()),
            (want.status, want.text()),
            "request {i}: {method} {target}"
        );
    }
}

#[test]
fn reserved_keys_limits_and_consistency() {
    let cluster = Cluster::start(3, Timing::default(), &[]);
    let leader = cluster.leader();
    let call = |method, target: &str, body: Option<&[u8]>| {
        cluster
            .client
            .call(method, &cluster.url(leader, target), body, false)
            .unwrap()
    };
    assert_eq!(
        call("PUT", "/keys", Some(br#"{"key":"a","value":"1"}"#)).status,
        200
    );

    // The cluster's own keys: refused on writes, invisible to reads.
    let reserved = "%FF%FF%FF%FFlsmdb.cluster%2Fapplied";
    let refused = call("DELETE", &format!("/keys?key={reserved}"), None);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body["error"].as_str().unwrap().contains("reserves"));
    let hidden = call("GET", &format!("/keys?key={reserved}"), None);
    assert_eq!(hidden.body["value"], serde_json::Value::Null);
    let all = call(
        "GET",
        "/keys/range?start_key=%00&end_key=%FF%FF%FF%FF%FF%FF",
        None,
    );
    assert_eq!(all.body, json!({"results": [{"key": "a", "value": "1"}]}));

    // One write is one log entry: over the group's 4 MiB per write, 413 and a reason.
    let over = json!({"key": "huge", "value": "x".repeat(5 << 20)}).to_string();
    let reply = call("PUT", "/keys", Some(over.as_bytes()));
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.body["error"].as_str().unwrap().contains("limit"));

    // Reads: linearizable by default, `stale` reads this node as it is.
    for node in [1, 2, 3] {
        let target = "/keys?key=a&consistency=stale";
        let stale = cluster
            .client
            .call("GET", &cluster.url(node, target), None, false);
        // A follower may not have applied the write yet; it answers all the same.
        assert_eq!(stale.unwrap().status, 200);
    }
    let bad = call("GET", "/keys?key=a&consistency=eventual", None);
    assert_eq!(bad.status, 400, "{}", bad.body);

    // The admin routes want the cluster's token.
    let anonymous = cluster
        .client
        .call("GET", &cluster.url(leader, "/cluster/status"), None, false)
        .unwrap();
    assert_eq!(anonymous.status, 401);
    let status = cluster.status(leader).unwrap();
    assert_eq!(status["role"], "leader");
    assert_eq!(status["voters"], json!([1, 2, 3]));
    assert_eq!(status["followers"].as_array().unwrap().len(), 2);

    let metrics = call("GET", "/metrics", None);
    let text = metrics.body.as_str().unwrap();
    for name in [
        "lsmdb_raft_term ",
        "lsmdb_raft_is_leader 1",
        "lsmdb_raft_leader_changes_total ",
        "lsmdb_raft_replication_lag_entries{follower=",
        "lsmdb_raft_apply_duration_seconds_count ",
        "lsmdb_writes_total ",
    ] {
        assert!(text.contains(name), "no {name:?} in /metrics:\n{text}");
    }
    assert_eq!(call("GET", "/health", None).body, json!({"health": "true"}));
}

/// A write the leader proposed but could not get committed is answered 503 with
/// `"outcome":"unknown"`, never as a success; without a quorum nothing is acknowledged and
/// every answer comes within the request timeout.
#[test]
fn without_a_quorum_no_write_or_read_is_acknowledged_and_answers_are_prompt() {
    let timing = Timing {
        heartbeat_ms: 40,
        election_ms: 2000,
        request_ms: 1500,
    };
    let request = Duration::from_millis(timing.request_ms);
    let mut cluster = Cluster::start(3, timing, &[]);
    let leader = cluster.leader();
    assert_eq!(cluster.put(leader, "a", "1").unwrap().status, 200);

    // Cut off just now, the leader still counts on its quorum and proposes the write,
    // which cannot commit.
    cluster.isolate(leader);
    let started = Instant::now();
    let reply = cluster.put(leader, "b", "maybe").unwrap();
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.body["outcome"], "unknown", "{}", reply.body);
    assert!(started.elapsed() < request + Duration::from_secs(1));
    cluster.heal();
    cluster.leader();

    // Two of three nodes gone: nothing is acknowledged, and no answer takes longer than
    // the request timeout (plus the time to send it).
    let stays = cluster.leader();
    for id in [1, 2, 3] {
        if id != stays {
            cluster.kill(id);
        }
    }
    for (method, target, body) in [
        ("PUT", "/keys", Some(&br#"{"key":"c","value":"3"}"#[..])),
        ("GET", "/keys?key=a", None),
        ("GET", "/keys/range?start_key=a&end_key=z", None),
    ] {
        let started = Instant::now();
        let reply = cluster
            .client
            .call(method, &cluster.url(stays, target), body, false)
            .unwrap();
        assert_eq!(reply.status, 503, "{method} {target}: {}", reply.body);
        assert!(reply.body["error"].is_string());
        let took = started.elapsed();
        assert!(
            took < request + Duration::from_secs(1),
            "{method} {target} took {took:?}"
        );
    }
    // This node's own data is still there to read, as it is.
    let stale = cluster
        .client
        .call(
            "GET",
            &cluster.url(stays, "/keys?key=a&consistency=stale"),
            None,
            false,
        )
        .unwrap();
    assert_eq!(stale.body, json!({"key": "a", "value": "1"}));
    let health = cluster
        .client
        .call("GET", &cluster.url(stays, "/health"), None, false)
        .unwrap();
    assert!(health.status == 200 || health.status == 503);

    // Back to a quorum. The write of unknown outcome sits in the old leader's log: it is
    // committed if that log wins an election after healing, and lost if not; either is
    // right, which is why the answer said "unknown" and not a failure.
    for id in [1, 2, 3] {
        if id != stays {
            cluster.spawn(id);
            cluster.await_up(id);
        }
    }
    let leader = cluster.leader();
    let b = wait_for("a read through the healed group", PATIENCE, || {
        let r = cluster.get(leader, "b").ok()?;
        (r.status == 200).then_some(r)
    });
    assert!(
        [json!(null), json!("maybe")].contains(&b.body["value"]),
        "{}",
        b.body
    );
}

/// Membership changes as an operator makes them: `lsmdb cluster add-learner`, `promote`,
/// `remove`, `status`, sent to a follower, which names the leader.
#[test]
fn the_cluster_command_changes_membership() {
    let mut cluster = Cluster::start(3, Timing::default(), &[]);
    let leader = cluster.leader();
    let follower = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    assert_eq!(cluster.put(leader, "k", "v").unwrap().status, 200);
    let cli = |cluster: &Cluster, args: &[&str]| {
        let out = cluster
            .lsmdb()
            .args(["cluster", "--token", crate::harness::TOKEN, "--connect"])
            .arg(cluster.nodes[&follower].http.to_string())
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "lsmdb cluster {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };

    let status = cli(&cluster, &["status"]);
    assert!(status.contains(&format!("leader {leader}")), "{status}");
    assert!(status.contains("voters 1 2 3"), "{status}");

    // A fourth node joins as a learner, becomes a voter, and leaves.
    cluster.add(4);
    let learner = format!("4={}", cluster.nodes[&4].http);
    assert_eq!(cli(&cluster, &["add-learner", &learner]).trim(), "OK");
    let status = cluster.status(leader).unwrap();
    assert_eq!(status["learners"], json!([4]));
    // A learner has the data, and serves linearizable reads.
    let got = cluster.get(4, "k").unwrap();
    assert_eq!(got.body, json!({"key": "k", "value": "v"}));
    assert_eq!(cli(&cluster, &["promote", "4"]).trim(), "OK");
    assert_eq!(
        cluster.status(leader).unwrap()["voters"],
        json!([1, 2, 3, 4])
    );
    assert_eq!(cli(&cluster, &["remove", "4"]).trim(), "OK");
    let status = cluster.status(leader).unwrap();
    assert_eq!(
        (&status["voters"], &status["learners"]),
        (&json!([1, 2, 3]), &json!([]))
    );
    let json_status: serde_json::Value =
        serde_json::from_str(&cli(&cluster, &["status", "--json"])).unwrap();
    assert_eq!(json_status["id"], follower);
}

/// Linearizable reads under load all succeed. Each read used to make a leadership check of
/// its own (a heartbeat to every follower, answered within the heartbeat interval); with
/// many reads at once on a busy machine some checks gathered no quorum and their reads got
/// 503 "no quorum" from a healthy group. Reads that arrive together now share one check,
/// and a check that misses its quorum is made again within the request timeout.
#[test]
fn concurrent_linearizable_reads_on_a_busy_machine_all_succeed() {
    let cluster = Cluster::start(3, Timing::default(), &[]);
    let leader = cluster.leader();
    assert_eq!(cluster.put(leader, "k", "v").unwrap().status, 200);
    let url = cluster.url(leader, "/keys?key=k");
    let until = Instant::now() + Duration::from_secs(3);
    let failures: Vec<String> = std::thread::scope(|s| {
        let readers: Vec<_> = (0..32)
            .map(|_| {
                s.spawn(|| {
                    let client = crate::harness::Client::new(Duration::from_secs(10));
                    let mut failed = Vec::new();
                    while Instant::now() < until {
                        match client.call("GET", &url, None, false) {
                            Ok(r) if r.status == 200 => {}
                            Ok(r) => failed.push(format!("{} {}", r.status, r.body)),
                            Err(e) => failed.push(e),
                        }
                    }
                    failed
                })
            })
            .collect();
        readers
            .into_iter()
            .flat_map(|r| r.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} reads failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

/// `POST /admin/checkpoint` on a node (here a follower) checkpoints its own replica once it
/// holds every write acknowledged before: an ordinary database that `lsmdb dump` reads.
#[test]
fn a_checkpoint_of_a_node_holds_every_acknowledged_write() {
    let cluster = Cluster::start(3, Timing::default(), &[]);
    let leader = cluster.leader();
    let follower = [1, 2, 3].into_iter().find(|&id| id != leader).unwrap();
    for i in 0..20 {
        assert_eq!(
            cluster
                .put(leader, &format!("k{i:02}"), "v")
                .unwrap()
                .status,
            200
        );
    }
    let dest = cluster.dir.path().join("copy");
    let body = json!({ "dest": dest }).to_string();
    let reply = cluster
        .client
        .call(
            "POST",
            &cluster.url(follower, "/admin/checkpoint"),
            Some(body.as_bytes()),
            false,
        )
        .unwrap();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let out = cluster
        .lsmdb()
        .arg("--db")
        .arg(&dest)
        .args(["dump", "--quiet", "--prefix", "k"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(lines.len(), 20, "{lines:?}");
    assert_eq!(lines[19], r#"{"key":"k19","value":"v"}"#);
}
