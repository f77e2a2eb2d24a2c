//! The shapes data takes at the edges, shared by the CLI, the shell and the HTTP server:
//! the seed's JSON objects, one-line escaped text, and batch input.
//!
//! JSON input is decoded field by field (`decode.rs`), never into a `serde_json::Value` tree.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

// Explicit, so the file is found the same way when the fuzz targets include this one.
#[path = "format/decode.rs"]
mod decode;
pub use decode::{Column, decode_fields};

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
        let (keys, values) = parse_batch_json(input)?;
        Ok(keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| (k.unwrap_or_default().to_vec(), v.map(<[u8]>::to_vec)))
            .collect())
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

/// Parses the JSON batch body into its keys and values, naming the field at fault.
pub fn parse_batch_json(body: &[u8]) -> Result<(Column, Column), String> {
    let fields = decode_fields(body, "the batch body must be a JSON object")?;
    let keys = fields.keys.ok_or("missing field \"keys\"")?;
    let values = fields.values.ok_or("missing field \"values\"")?;
    if keys.len() != values.len() {
        return Err(format!(
            "\"keys\" and \"values\" must have the same length (\"keys\" has {}, \"values\" has {})",
            items(keys.len()),
            items(values.len())
        ));
    }
    if let Some(i) = keys.iter().position(|k| k.is_none_or(<[u8]>::is_empty)) {
        return Err(format!("keys[{i}] is empty; keys must not be empty"));
    }
    Ok((keys, values))
}

/// The batch a parsed JSON body describes: a put per string value, a delete per `null`.
pub fn json_batch(keys: &Column, values: &Column) -> lsmdb::WriteBatch {
    let keys = keys.iter().map(Option::unwrap_or_default);
    batch_of(keys.zip(values.iter()))
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
    batch_of(entries.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))
}

fn batch_of<'a>(entries: impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)>) -> lsmdb::WriteBatch {
    let mut batch = lsmdb::WriteBatch::new();
    for (key, value) in entries {
        match value {
            Some(v) => batch.put(key, v),
            None => batch.delete(key),
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
