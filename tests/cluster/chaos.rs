//! RELIABILITY.md T17, `replicated_history`: client threads put, get and delete a few keys
//! through all three nodes (unique values, every invocation and response timed) while the
//! leader is killed with SIGKILL, paused with SIGSTOP and cut off by the partition switch;
//! then each key's history must be linearizable (`linearizable.rs`), every acknowledged
//! write readable after healing, and the nodes' data identical.
//!
//! The default run does `LSMDB_CHAOS_ROUNDS` rounds (2 unless set);
//! `scripts/cluster-chaos.sh N` runs N and prints the totals.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Client, Cluster, PATIENCE, Timing};
use crate::linearizable::{Event, Op, check};

const KEYS: usize = 3;
const CLIENTS: usize = 5;

/// What one round saw.
#[derive(Debug, Default, Clone, Copy)]
pub struct Tally {
    pub leader_changes: u64,
    pub ops: u64,
    /// Writes whose outcome was unknown.
    pub unknown: u64,
    /// Keys whose history no order explains.
    pub violations: u64,
    /// Keys whose value after healing shows an acknowledged write lost.
    pub lost: u64,
    /// Nodes whose data differed from the others' after healing.
    pub diverged: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, o: Tally) {
        self.leader_changes += o.leader_changes;
        self.ops += o.ops;
        self.unknown += o.unknown;
        self.violations += o.violations;
        self.lost += o.lost;
        self.diverged += o.diverged;
    }
}

/// A tiny deterministic generator (xorshift64*), so a round's choices need no crate.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

struct History {
    start: Instant,
    events: Mutex<Vec<(usize, Event)>>,
}

impl History {
    fn now(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    fn record(&self, key: usize, op: Op, call: u64, ret: Option<u64>) {
        self.events
            .lock()
            .unwrap()
            .push((key, Event { op, call, ret }));
    }
}

fn value_id(text: &str) -> Option<u64> {
    text.strip_prefix('v')?.parse().ok()
}

/// One client: random operations on random nodes until `stop`.
fn client(
    seed: u64,
    urls: Vec<String>,
    history: Arc<History>,
    values: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    timeout: Duration,
) -> u64 {
    let http = Client::new(timeout);
    let mut rng = Rng(seed | 1);
    let mut ops = 0;
    while !stop.load(Ordering::Relaxed) {
        let key = rng.below(KEYS as u64) as usize;
        let base = &urls[rng.below(urls.len() as u64) as usize];
        let roll = rng.below(100);
        let call = history.now();
        if roll < 45 {
            let reply = http.call("GET", &format!("{base}/keys?key=k{key}"), None, false);
            let ret = history.now();
            if let Ok(r) = reply
                && r.status == 200
            {
                let seen = r.body["value"].as_str().map(|v| value_id(v).expect(v));
                history.record(key, Op::Get(seen), call, Some(ret));
            }
        } else {
            let (op, method, body) = if roll < 90 {
                let v = values.fetch_add(1, Ordering::Relaxed);
                let body = json!({"key": format!("k{key}"), "value": format!("v{v}")});
                (Op::Put(v), "PUT", Some(body.to_string()))
            } else {
                (Op::Delete, "DELETE", None)
            };
            let url = match op {
                Op::Delete => format!("{base}/keys?key=k{key}"),
                _ => format!("{base}/keys"),
            };
            let reply = http.call(method, &url, body.as_deref().map(str::as_bytes), false);
            let ret = history.now();
            match reply {
                Ok(r) if r.status == 200 => history.record(key, op, call, Some(ret)),
                Ok(r) if r.status == 503 && r.body["outcome"] == "unknown" => {
                    history.record(key, op, call, None)
                }
                // Refused before anything was proposed: it did not happen.
                Ok(r) if r.status == 503 => {}
                Ok(r) => panic!("{method} {url}: {} {}", r.status, r.body),
                // Never reached a server: nothing happened.
                Err(e) if e.contains("Connection refused") => {}
                // Sent, and no answer: it may have happened.
                Err(_) => history.record(key, op, call, None),
            }
        }
        ops += 1;
    }
    ops
}

/// Whether the value after healing could be the last write: some write (acknowledged or
/// not) that no acknowledged write certainly followed. If not, an acknowledged write was
/// lost.
fn keeps_acknowledged_writes(events: &[Event], last: Option<u64>) -> bool {
    let writes: Vec<&Event> = events
        .iter()
        .filter(|e| !matches!(e.op, Op::Get(_)))
        .collect();
    let acked_after = |w: &Event| {
        let end = w.ret.unwrap_or(u64::MAX);
        writes.iter().any(|o| o.ret.is_some() && o.call > end)
    };
    let candidates: Vec<Option<u64>> = writes
        .iter()
        .filter(|w| !acked_after(w))
        .map(|w| match w.op {
            Op::Put(v) => Some(v),
            _ => None,
        })
        .collect();
    if writes.iter().all(|w| w.ret.is_none()) && last.is_none() {
        return true;
    }
    candidates.contains(&last)
}

/// One round: a fresh group, clients, the faults, then the checks.
pub fn round(seed: u64) -> Tally {
    let timing = Timing {
        heartbeat_ms: 30,
        election_ms: 400,
        request_ms: 1000,
    };
    let mut cluster = Cluster::start(3, timing, &[]);
    let urls: Vec<String> = cluster
        .nodes
        .keys()
        .map(|id| cluster.url(*id, ""))
        .collect();
    let history = Arc::new(History {
        start: Instant::now(),
        events: Mutex::new(Vec::new()),
    });
    let values = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (urls, h, v, s) = (
                urls.clone(),
                Arc::clone(&history),
                Arc::clone(&values),
                Arc::clone(&stop),
            );
            let seed = seed.wrapping_mul(31).wrapping_add(c as u64 + 1);
            thread::spawn(move || client(seed, urls, h, v, s, Duration::from_millis(2500)))
        })
        .collect();

    let mut tally = Tally::default();
    let pause = |ms| thread::sleep(Duration::from_millis(ms));
    let all: Vec<u64> = cluster.nodes.keys().copied().collect();
    let others = |l: u64| -> Vec<u64> { all.iter().copied().filter(|&o| o != l).collect() };
    pause(400);
    // The leader killed, then restarted.
    let old = cluster.leader();
    cluster.kill(old);
    let new = cluster.leader_among(&others(old), PATIENCE);
    tally.leader_changes += u64::from(new != old);
    pause(300);
    cluster.spawn(old);
    cluster.await_up(old);
    pause(500);
    // The leader paused past its lease, then woken.
    let old = cluster.leader();
    cluster.signal(old, libc::SIGSTOP);
    let new = cluster.leader_among(&others(old), PATIENCE);
    tally.leader_changes += u64::from(new != old);
    pause(300);
    cluster.signal(old, libc::SIGCONT);
    pause(500);
    // The leader cut off from the others, then healed.
    let old = cluster.leader();
    cluster.isolate(old);
    let new = cluster.leader_among(&others(old), PATIENCE);
    tally.leader_changes += u64::from(new != old);
    pause(300);
    cluster.heal();
    pause(500);
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        tally.ops += c.join().expect("a client panicked");
    }

    // After healing: each key read through the leader, as part of the history.
    let leader = cluster.leader();
    let mut finals = BTreeMap::new();
    let http = Client::new(Duration::from_secs(10));
    for key in 0..KEYS {
        let call = history.now();
        let r = http
            .call(
                "GET",
                &cluster.url(leader, &format!("/keys?key=k{key}")),
                None,
                false,
            )
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let seen = r.body["value"].as_str().and_then(value_id);
        history.record(key, Op::Get(seen), call, Some(history.now()));
        finals.insert(key, seen);
    }
    let events = std::mem::take(&mut *history.events.lock().unwrap());
    tally.unknown = events.iter().filter(|(_, e)| e.ret.is_none()).count() as u64;
    for key in 0..KEYS {
        let of_key: Vec<Event> = events
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, e)| *e)
            .collect();
        if let Err(why) = check(&of_key) {
            eprintln!("round {seed}, key k{key}: {why}");
            tally.violations += 1;
        }
        if !keeps_acknowledged_writes(&of_key, finals[&key]) {
            eprintln!("round {seed}, key k{key}: an acknowledged write is lost");
            tally.lost += 1;
        }
    }
    cluster.await_converged();
    let dumps: Vec<Vec<u8>> = all.iter().map(|id| cluster.dump(*id)).collect();
    tally.diverged = dumps.iter().filter(|d| **d != dumps[0]).count() as u64;
    tally
}

#[test]
fn replicated_history_is_linearizable() {
    let rounds: u64 = std::env::var("LSMDB_CHAOS_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(2);
    let mut total = Tally::default();
    for r in 0..rounds {
        let t = round(0x5eed + r);
        eprintln!("chaos round {}: {t:?}", r + 1);
        total += t;
    }
    // The line scripts/cluster-chaos.sh reads.
    println!(
        "chaos: rounds {rounds} leader_changes {} operations {} unknown_outcomes {} violations {} lost_acknowledged_writes {} diverged_nodes {}",
        total.leader_changes,
        total.ops,
        total.unknown,
        total.violations,
        total.lost,
        total.diverged
    );
    assert_eq!(
        (total.violations, total.lost, total.diverged),
        (0, 0, 0),
        "{total:?}"
    );
    assert!(total.leader_changes >= 3 * rounds, "{total:?}");
}

#[test]
fn the_lost_write_check_catches_a_lost_write() {
    let ev = |op, call, ret| Event {
        op,
        call,
        ret: Some(ret),
    };
    let h = [ev(Op::Put(1), 0, 1), ev(Op::Put(2), 2, 3)];
    assert!(keeps_acknowledged_writes(&h, Some(2)));
    assert!(!keeps_acknowledged_writes(&h, Some(1)));
    assert!(!keeps_acknowledged_writes(&h, None));
    // An unknown write after the last acknowledged one may or may not have happened.
    let h = [
        ev(Op::Put(1), 0, 1),
        Event {
            op: Op::Delete,
            call: 2,
            ret: None,
        },
    ];
    assert!(keeps_acknowledged_writes(&h, Some(1)));
    assert!(keeps_acknowledged_writes(&h, None));
}
