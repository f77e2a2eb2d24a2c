//! The shapes data takes at the edges, shared by the CLI, the shell and the HTTP server:
//! the seed's JSON objects, one-line escaped text, and batch input.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};
use serde_json::Value;

/// The seed's `{"key":..,"value":..}` (`"value":null` for a missing key). Keys and values
/// are strings when they are UTF-8, else base64 with a `<name>_encoding: "base64"` marker
/// beside them. Serialized directly, without building a JSON tree first: it is the reply of
/// every `GET /keys`.
pub struct KeyValue<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

pub fn key_value<'a>(key: &'a [u8], value: Option<&'a [u8]>) -> KeyValue<'a> {
    KeyValue { key, value }
}

impl Serialize for KeyValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        put_bytes(&mut map, "key", "key_encoding", self.key)?;
        match self.value {
            Some(v) => put_bytes(&mut map, "value", "value_encoding", v)?,
            None => map.serialize_entry("value", &())?,
        }
        map.end()
    }
}

fn put_bytes<M: SerializeMap>(
    map: &mut M,
    name: &str,
    encoding: &str,
    bytes: &[u8],
) -> Result<(), M::Error> {
    match std::str::from_utf8(bytes) {
        Ok(s) => map.serialize_entry(name, s),
        Err(_) => {
            map.serialize_entry(name, &BASE64.encode(bytes))?;
            map.serialize_entry(encoding, "base64")
        }
    }
}

/// The seed's `{"success":true}`: a write done, with nothing more to say.
pub fn success() -> serde_json::Value {
    serde_json::json!({"success": true})
}

/// `{"success":true,"deleted":N}`: a delete, and whether the key was there (1) or not (0).
pub fn deleted(existed: bool) -> serde_json::Value {
    serde_json::json!({"success": true, "deleted": u8::from(existed)})
}

/// The seed's `{"success":true,"count":N}`: a batch of `count` operations applied.
pub fn batch_applied(count: usize) -> serde_json::Value {
    serde_json::json!({"success": true, "count": count})
}

/// The seed's `{"results":[...]}`.
pub fn results(pairs: &[(Vec<u8>, Vec<u8>)]) -> impl Serialize + '_ {
    struct Pairs<'a>(&'a [(Vec<u8>, Vec<u8>)]);
    impl Serialize for Pairs<'_> {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_seq(self.0.iter().map(|(k, v)| key_value(k, Some(v))))
        }
    }
    let mut obj = std::collections::BTreeMap::new();
    obj.insert("results", Pairs(pairs));
    obj
}

/// Bytes as one line of text: printable UTF-8 as is; backslash, tab, newline, carriage
/// return and other control characters escaped; invalid UTF-8 as `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A batch parsed from user input: `(key, Some(value))` to put, `(key, None)` to delete.
pub type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Parses the seed's JSON batch body `{"keys":[...],"values":[...]}` (a `null` value is a
/// delete), or, for input that is not a JSON object, one `KEY<TAB>VALUE` per line.
pub fn parse_batch(input: &[u8]) -> Result<Entries, String> {
    let text = std::str::from_utf8(input).map_err(|e| format!("batch input is not UTF-8: {e}"))?;
    if text.trim_start().starts_with('{') {
        let body: Value = serde_json::from_str(text).map_err(|e| format!("malformed JSON: {e}"))?;
        parse_batch_json(&body)
    } else {
        parse_batch_lines(text)
    }
}

fn items(n: usize) -> String {
    if n == 1 {
        "1 item".into()
    } else {
        format!("{n} items")
    }
}

/// Parses the JSON batch body, naming the field at fault.
pub fn parse_batch_json(body: &Value) -> Result<Entries, String> {
    let obj = body
        .as_object()
        .ok_or("the batch body must be a JSON object")?;
    let keys = obj
        .get("keys")
        .ok_or("missing field \"keys\"")?
        .as_array()
        .ok_or("\"keys\" must be an array of strings")?;
    let values = obj
        .get("values")
        .ok_or("missing field \"values\"")?
        .as_array()
        .ok_or("\"values\" must be an array of strings")?;
    if keys.len() != values.len() {
        return Err(format!(
            "\"keys\" and \"values\" must have the same length (\"keys\" has {}, \"values\" has {})",
            items(keys.len()),
            items(values.len())
        ));
    }
    keys.iter()
        .zip(values)
        .enumerate()
        .map(|(i, (k, v))| {
            let key = k
                .as_str()
                .ok_or_else(|| format!("keys[{i}] must be a string"))?;
            if key.is_empty() {
                return Err(format!("keys[{i}] is empty; keys must not be empty"));
            }
            let value = match v {
                Value::String(s) => Some(s.as_bytes().to_vec()),
                Value::Null => None,
                _ => return Err(format!("values[{i}] must be a string or null")),
            };
            Ok((key.as_bytes().to_vec(), value))
        })
        .collect()
}

fn parse_batch_lines(text: &str) -> Result<Entries, String> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let (key, value) = line
            .split_once('\t')
            .ok_or_else(|| format!("line {}: expected KEY<TAB>VALUE", n + 1))?;
        if key.is_empty() {
            return Err(format!("line {}: the key is empty", n + 1));
        }
        entries.push((key.as_bytes().to_vec(), Some(value.as_bytes().to_vec())));
    }
    Ok(entries)
}

/// Turns parsed entries into a batch for the engine.
pub fn to_batch(entries: &Entries) -> lsmdb::WriteBatch {
    let mut batch = lsmdb::WriteBatch::new();
    for (k, v) in entries {
        match v {
            Some(v) => batch.put(k, v),
            None => batch.delete(k),
        };
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_batches_are_checked_field_by_field() {
        let ok = parse_batch(br#"{"keys":["a","b"],"values":["1",null]}"#).unwrap();
        assert_eq!(
            ok,
            vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)]
        );
        let cases: [(&[u8], &str); 6] = [
            (
                br#"{"keys":["a"],"values":[]}"#,
                "same length (\"keys\" has 1 item",
            ),
            (br#"{"keys":["a"]}"#, "missing field \"values\""),
            (
                br#"{"keys":[1],"values":["x"]}"#,
                "keys[0] must be a string",
            ),
            (br#"{"keys":[""],"values":["x"]}"#, "keys[0] is empty"),
            (br#"{"keys":["a"],"values":[2]}"#, "values[0] must be"),
            (br#"{"keys":"#, "malformed JSON"),
        ];
        for (input, msg) in cases {
            let err = parse_batch(input).unwrap_err();
            assert!(err.contains(msg), "{err}");
        }
    }

    #[test]
    fn tab_separated_batches_keep_spaces_and_extra_tabs() {
        let got = parse_batch(b"a b\tx y\n\nk\tv\tw\r\n").unwrap();
        assert_eq!(
            got,
            vec![
                (b"a b".to_vec(), Some(b"x y".to_vec())),
                (b"k".to_vec(), Some(b"v\tw".to_vec()))
            ]
        );
        assert!(parse_batch(b"no tab here").unwrap_err().contains("line 1"));
    }

    #[test]
    fn escaping_keeps_one_entry_on_one_line() {
        assert_eq!(escape(b"a\tb\nc\\d"), "a\\tb\\nc\\\\d");
        assert_eq!(escape("ünï".as_bytes()), "ünï");
        assert_eq!(escape(b"\xff\x00"), "\\xff\\u{0}");
    }

    #[test]
    fn json_marks_binary_bytes_as_base64() {
        let v = serde_json::to_value(key_value(b"k", Some(b"\xff\xfe"))).unwrap();
        assert_eq!(v["value"], "//4=");
        assert_eq!(v["value_encoding"], "base64");
        let missing = serde_json::to_string(&key_value(b"k", None)).unwrap();
        assert_eq!(missing, r#"{"key":"k","value":null}"#);
        let list = serde_json::to_string(&results(&[(b"a".to_vec(), b"1".to_vec())])).unwrap();
        assert_eq!(list, r#"{"results":[{"key":"a","value":"1"}]}"#);
    }
}
