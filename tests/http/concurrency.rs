//! Many clients at once against one server: 8 threads x 300 mixed requests (put, get,
//! delete, batch, range), each checked against the thread's own model of its keys as it goes,
//! and the final state checked against the union of the models.

use std::collections::BTreeMap;
use std::thread;

use crate::binary::http::{Conn, Server, encode};
use serde_json::{Value, json};

const THREADS: usize = 8;
const REQUESTS: usize = 300;

/// xorshift64: a fixed sequence per thread, so a failure replays the same way.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Runs one client; returns its model of the keys it owns (`t<N>/...`).
fn client(conn: &mut Conn, t: usize) -> BTreeMap<String, String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
    let mut model = BTreeMap::new();
    let key = |i: u64| format!("t{t}/k{i:02} ✓");
    for n in 0..REQUESTS {
        let k = key(rng.below(30));
        match rng.below(10) {
            0..=3 => {
                let v = format!("v{n} of {t}");
                let body = json!({"key": k, "value": v}).to_string();
                let r = conn.request("PUT", "/keys", &[], Some(body.as_bytes()));
                assert_eq!(r.text(), r#"{"success":true}"#);
                model.insert(k, v);
            }
            4..=6 => {
                let r = conn.request("GET", &format!("/keys?key={}", encode(&k)), &[], None);
                let want = model.get(&k).map_or(Value::Null, |v| json!(v));
                assert_eq!(
                    r.json(),
                    json!({"key": k, "value": want}),
                    "thread {t} request {n}"
                );
            }
            7 => {
                let r = conn.request("DELETE", &format!("/keys?key={}", encode(&k)), &[], None);
                assert_eq!(r.status, 200);
                model.remove(&k);
            }
            8 => {
                let keys: Vec<String> = (0..3).map(|_| key(rng.below(30))).collect();
                let values: Vec<String> = (0..3).map(|i| format!("b{n}.{i}")).collect();
                let body = json!({"keys": keys, "values": values}).to_string();
                let r = conn.request("POST", "/keys/batch", &[], Some(body.as_bytes()));
                assert_eq!(r.text(), r#"{"success":true,"count":3}"#);
                // Later items win within a batch, as they would applied one by one.
                for (k, v) in keys.into_iter().zip(values) {
                    model.insert(k, v);
                }
            }
            _ => {
                let target = format!(
                    "/keys/range?start_key={}&end_key={}",
                    encode(&format!("t{t}/")),
                    encode(&format!("t{t}0"))
                );
                let r = conn.request("GET", &target, &[], None);
                let want: Vec<Value> = model
                    .iter()
                    .map(|(k, v)| json!({"key": k, "value": v}))
                    .collect();
                assert_eq!(
                    r.json(),
                    json!({ "results": want }),
                    "thread {t} request {n}"
                );
            }
        }
    }
    model
}

#[test]
fn eight_clients_with_mixed_requests_all_get_right_answers() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--threads", "4"]);
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let addr = server.addr;
            thread::spawn(move || client(&mut Conn::open(addr), t))
        })
        .collect();
    let mut expected = BTreeMap::new();
    for c in clients {
        expected.extend(c.join().expect("a client thread failed"));
    }

    let everything = server.get("/keys/range?start_key=%00&end_key=%7F").json();
    let got: BTreeMap<String, String> = everything["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| {
            (
                kv["key"].as_str().unwrap().into(),
                kv["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(got, expected);
    let stats = server.get("/stats").json();
    assert!(stats["writes"].as_u64().unwrap() >= (THREADS * REQUESTS / 2) as u64);
}
