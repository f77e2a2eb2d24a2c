//! `lsmdb checkpoint --connect` beside a server under write load: each checkpoint opens, and
//! holds every write acknowledged before it began, and is one moment's state (each writer's
//! keys in it are a prefix of what that writer wrote, in order).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use crate::binary::http::Server;
use crate::binary::lsmdb;

const WRITERS: usize = 4;

#[test]
fn checkpoints_under_write_load_hold_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("db"), &["--token", "t0k"]);
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Vec<AtomicU64>> = Arc::new((0..WRITERS).map(|_| AtomicU64::new(0)).collect());
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (stop, acked) = (Arc::clone(&stop), Arc::clone(&acked));
            let mut conn = server.connect();
            thread::spawn(move || {
                let auth = [("Authorization", "Bearer t0k")];
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!(r#"{{"key":"w{w}:{i:08}","value":"{}"}}"#, "x".repeat(200));
                    let r = conn.request("PUT", "/keys", &auth, Some(body.as_bytes()));
                    assert_eq!(r.status, 200, "{}", r.text());
                    i += 1;
                    acked[w].store(i, Ordering::Release);
                }
            })
        })
        .collect();

    let mut checkpoints = Vec::new();
    for n in 0..3 {
        thread::sleep(Duration::from_millis(200));
        let before: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();
        let dest = dir.path().join(format!("checkpoint-{n}"));
        lsmdb(&dir.path().join("unused"))
            .arg("checkpoint")
            .arg(&dest)
            .args(["--connect", &format!("http://{}", server.addr)])
            .env("LSMDB_TOKEN", "t0k")
            .assert()
            .success()
            .stdout(predicates::str::starts_with(format!(
                "checkpoint written to {}: ",
                dest.display()
            )));
        checkpoints.push((dest, before));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let total: Vec<u64> = acked.iter().map(|a| a.load(Ordering::Acquire)).collect();

    for (dest, before) in &checkpoints {
        let copy = lsmdb::Db::open_read_only(dest, lsmdb::Options::default()).unwrap();
        for w in 0..WRITERS {
            let held: Vec<u64> = copy
                .prefix(format!("w{w}:"))
                .unwrap()
                .map(|e| {
                    let key = e.unwrap().0;
                    String::from_utf8(key[format!("w{w}:").len()..].to_vec())
                        .unwrap()
                        .parse()
                        .unwrap()
                })
                .collect();
            let n = held.len() as u64;
            assert!(
                held.iter().copied().eq(0..n),
                "writer {w}: not a prefix of its writes in {}",
                dest.display()
            );
            assert!(
                n >= before[w],
                "writer {w}: {} had {n} writes, {} were acknowledged before it began",
                dest.display(),
                before[w]
            );
            assert!(n <= total[w], "writer {w}: more writes than were made");
        }
    }
    assert!(
        total.iter().all(|&n| n > 100),
        "the writers hardly wrote: {total:?}"
    );
    // A checkpoint is a database like any other.
    lsmdb(&checkpoints[0].0)
        .args(["get", "w0:00000000"])
        .assert()
        .success();
}
