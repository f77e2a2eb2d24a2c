//! Beyond the seed, every byte string travels over HTTP: `GET /keys/range?prefix=`,
//! `?encoding=base64` on reads, `"encoding":"base64"` in PUT and batch bodies. The seed's
//! two-parameter range keeps its answers and its errors.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::binary::http::Server;

fn keys(reply: &Value) -> Vec<String> {
    reply["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["key"].as_str().unwrap().to_string())
        .collect()
}

fn batch(server: &Server, body: Value) {
    let r = server.request("POST", "/keys/batch", Some(body.to_string().as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
}

#[test]
fn prefix_ranges_take_bounds_limits_and_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let all = ["a", "user:1", "user:2", "user:3", "user;", "\u{ff}z"];
    batch(&server, json!({"keys": all, "values": all}));

    let r = server.get("/keys/range?prefix=user:").json();
    assert_eq!(keys(&r), ["user:1", "user:2", "user:3"]);
    assert_eq!(keys(&server.get("/keys/range?prefix=").json()), all);
    let r = server
        .get("/keys/range?prefix=user:&start_key=user:2")
        .json();
    assert_eq!(keys(&r), ["user:2", "user:3"]);
    let r = server.get("/keys/range?prefix=&start_key=user;").json();
    assert_eq!(keys(&r), ["user;", "\u{ff}z"]);
    let r = server.get("/keys/range?prefix=&end_key=user:2").json();
    assert_eq!(keys(&r), ["a", "user:1"]);
    let r = server.get("/keys/range?prefix=%C3%BF").json();
    assert_eq!(keys(&r), ["\u{ff}z"]);
    assert_eq!(
        keys(&server.get("/keys/range?prefix=nothing").json()),
        Vec::<String>::new()
    );

    // Paging through a prefix: next_start_key is where the next page starts.
    let first = server.get("/keys/range?prefix=user:&limit=2").json();
    assert_eq!(keys(&first), ["user:1", "user:2"]);
    assert_eq!(first["next_start_key"], "user:3");
    let rest = server
        .get("/keys/range?prefix=user:&start_key=user:3&limit=2")
        .json();
    assert_eq!(keys(&rest), ["user:3"]);
    assert!(rest.get("next_start_key").is_none(), "{rest}");

    // The seed's form: the same answers and errors as ever.
    let seed = server.get("/keys/range?start_key=user:1&end_key=user:3");
    assert_eq!(
        seed.text(),
        r#"{"results":[{"key":"user:1","value":"user:1"},{"key":"user:2","value":"user:2"}]}"#
    );
    let missing = server.get("/keys/range?start_key=a").error(400);
    assert_eq!(missing, "missing query parameter \"end_key\"");
    let missing = server.get("/keys/range?end_key=a").error(400);
    assert_eq!(missing, "missing query parameter \"start_key\"");
}

#[test]
fn every_byte_value_travels_as_base64_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let key: Vec<u8> = (0..=255u8).rev().collect();
    let value: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let body =
        json!({"key": BASE64.encode(&key), "value": BASE64.encode(&value), "encoding": "base64"});
    let r = server.request("PUT", "/keys", Some(body.to_string().as_bytes()));
    assert_eq!(r.text(), r#"{"success":true}"#);

    let escaped: String = key.iter().map(|b| format!("%{b:02X}")).collect();
    for reply in [
        server.get(&format!("/keys?key={escaped}&encoding=base64")),
        server.request(
            "POST",
            "/keys/get?encoding=base64",
            Some(
                json!({"key": BASE64.encode(&key), "encoding": "base64"})
                    .to_string()
                    .as_bytes(),
            ),
        ),
    ] {
        let got = reply.json();
        assert_eq!(got["key_encoding"], "base64");
        assert_eq!(BASE64.decode(got["key"].as_str().unwrap()).unwrap(), key);
        assert_eq!(got["value_encoding"], "base64");
        assert_eq!(
            BASE64.decode(got["value"].as_str().unwrap()).unwrap(),
            value
        );
    }
    // Without encoding=base64, bytes that are not UTF-8 are still marked, as before.
    let plain = server.get(&format!("/keys?key={escaped}")).json();
    assert_eq!(plain["value_encoding"], "base64");

    // A batch in base64: puts, a delete (null), and a text key read back in base64.
    batch(
        &server,
        json!({"encoding": "base64", "keys": [BASE64.encode(b"t\x00"), BASE64.encode(&key), BASE64.encode("ключ")],
               "values": [BASE64.encode(b""), null, BASE64.encode("значение")]}),
    );
    let r = server.get("/keys/range?prefix=&encoding=base64").json();
    let results = r["results"].as_array().unwrap();
    let decoded: Vec<(Vec<u8>, Vec<u8>)> = results
        .iter()
        .map(|e| {
            assert_eq!(e["key_encoding"], "base64");
            assert_eq!(e["value_encoding"], "base64");
            let field = |name: &str| BASE64.decode(e[name].as_str().unwrap()).unwrap();
            (field("key"), field("value"))
        })
        .collect();
    assert_eq!(
        decoded,
        [
            (b"t\x00".to_vec(), Vec::new()),
            ("ключ".as_bytes().to_vec(), "значение".as_bytes().to_vec())
        ]
    );
    let cut = server
        .get("/keys/range?prefix=&limit=1&encoding=base64")
        .json();
    assert_eq!(cut["next_start_key"], BASE64.encode("ключ"));
    assert_eq!(cut["next_start_key_encoding"], "base64");

    // A large value, streamed, in base64 too.
    let big: Vec<u8> = (0..=255u8).cycle().take(3 << 20).collect();
    let body =
        json!({"key": BASE64.encode("big"), "value": BASE64.encode(&big), "encoding": "base64"});
    let r = server.request("PUT", "/keys", Some(body.to_string().as_bytes()));
    assert_eq!(r.status, 200, "{}", r.text());
    let got = server.get("/keys?key=big&encoding=base64").json();
    assert_eq!(got["key"], BASE64.encode("big"));
    assert_eq!(BASE64.decode(got["value"].as_str().unwrap()).unwrap(), big);
}

#[test]
fn bad_encodings_are_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let put = |body: Value| server.request("PUT", "/keys", Some(body.to_string().as_bytes()));
    let cases = [
        (
            put(json!({"key": "*", "value": "", "encoding": "base64"})),
            "\"key\" is not base64",
        ),
        (
            put(json!({"key": "YQ==", "value": "!", "encoding": "base64"})),
            "\"value\" is not base64",
        ),
        (
            put(json!({"key": "a", "value": "b", "encoding": "rot13"})),
            "unknown encoding \"rot13\"",
        ),
        (
            put(json!({"key": "", "value": "b", "encoding": "base64"})),
            "\"key\" must not be empty",
        ),
        (
            server.get("/keys?key=a&encoding=hex"),
            "unknown encoding \"hex\"",
        ),
        (
            server.request(
                "POST",
                "/keys/batch",
                Some(
                    json!({"encoding": "base64", "keys": ["YQ=="], "values": ["%"]})
                        .to_string()
                        .as_bytes(),
                ),
            ),
            "values[0] is not base64",
        ),
    ];
    for (reply, message) in cases {
        let error = reply.error(400);
        assert!(error.contains(message), "{error}");
    }
    let r = server.get("/keys/range?prefix=&encoding=base64").json();
    assert_eq!(r["results"], json!([]), "nothing was written");
}

#[test]
fn checkpoints_are_taken_on_request_behind_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("db"), &["--token", "t0k"]);
    let auth = [("Authorization", "Bearer t0k")];
    let post = |body: &str, headers: &[(&str, &str)]| {
        server
            .connect()
            .request("POST", "/admin/checkpoint", headers, Some(body.as_bytes()))
    };
    let put = server
        .connect()
        .request("PUT", "/keys", &auth, Some(br#"{"key":"k","value":"v"}"#));
    assert_eq!(put.status, 200);
    let dest = dir.path().join("copy");
    let body = json!({"dest": dest}).to_string();
    post(&body, &[]).error(401);
    assert!(!dest.exists());
    let r = post(&body, &auth);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["tables"], 1);
    let copy = lsmdb::Db::open_read_only(&dest, lsmdb::Options::default()).unwrap();
    assert_eq!(copy.get(b"k").unwrap(), Some(b"v".to_vec()));

    let again = post(&body, &auth).error(400);
    assert!(again.contains("exists and is not empty"), "{again}");
    let relative = post(r#"{"dest":"copy2"}"#, &auth).error(400);
    assert!(relative.contains("absolute path"), "{relative}");
    let bad = post(r#"{"to":"/tmp/x"}"#, &auth).error(400);
    assert!(bad.contains("dest"), "{bad}");
    let wrong = server
        .connect()
        .request("GET", "/admin/checkpoint", &auth, None);
    wrong.error(405);
    assert_eq!(wrong.header("Allow"), Some("POST"));
}
