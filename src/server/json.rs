//! The seed's JSON shapes, as the HTTP server writes and reads them and `lsmdb`'s `--json`
//! output and batch input share them: `{"key":..,"value":..}`, `{"results":[..]}`, the
//! `{"success":..}` replies, and the batch body `{"keys":[..],"values":[..]}`. Bytes that
//! are not UTF-8 travel as base64, with a `*_encoding` marker beside them; with
//! [`Encoding::Base64`] every key and value does, so a client need not tell them apart
//! (`?encoding=base64` on reads, `"encoding":"base64"` in bodies).
//!
//! JSON input is decoded field by field (`decode.rs`), never into a `serde_json::Value` tree.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use std::borrow::Cow;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

mod decode;
pub use decode::{BodyFields, Column, decode_fields};

/// How keys and values are spelled in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Encoding {
    /// As strings when they are UTF-8, else base64 with a marker (the seed's shapes).
    #[default]
    Text,
    /// Every one as base64 (with a marker in replies).
    Base64,
}

impl Encoding {
    /// The encoding an `encoding` query parameter or body field names; none is `Text`.
    pub fn named(name: Option<&[u8]>) -> Result<Encoding, String> {
        match name {
            None => Ok(Encoding::Text),
            Some(b"base64") => Ok(Encoding::Base64),
            Some(other) => Err(format!(
                "unknown encoding \"{}\" (the one there is: \"base64\")",
                String::from_utf8_lossy(other)
            )),
        }
    }

    /// The bytes a string of a request body stands for; `what` names it in an error.
    pub fn decode<'a>(self, text: &'a str, what: &str) -> Result<Cow<'a, [u8]>, String> {
        match self {
            Encoding::Text => Ok(Cow::Borrowed(text.as_bytes())),
            Encoding::Base64 => BASE64
                .decode(text)
                .map(Cow::Owned)
                .map_err(|e| format!("{what} is not base64: {e}")),
        }
    }
}

/// The seed's `{"key":..,"value":..}` (`"value":null` for a missing key). Keys and values
/// are strings when they are UTF-8, else base64 with a `<name>_encoding: "base64"` marker
/// beside them. Serialized directly, without building a JSON tree first: it is the reply of
/// every `GET /keys`.
pub struct KeyValue<'a> {
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
    pub encoding: Encoding,
}

pub fn key_value<'a>(key: &'a [u8], value: Option<&'a [u8]>) -> KeyValue<'a> {
    key_value_as(key, value, Encoding::Text)
}

/// [`key_value`] with every key and value spelled as `encoding` says.
pub fn key_value_as<'a>(
    key: &'a [u8],
    value: Option<&'a [u8]>,
    encoding: Encoding,
) -> KeyValue<'a> {
    KeyValue {
        key,
        value,
        encoding,
    }
}

impl Serialize for KeyValue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        put_bytes(&mut map, "key", self.key, self.encoding)?;
        match self.value {
            Some(v) => put_bytes(&mut map, "value", v, self.encoding)?,
            None => map.serialize_entry("value", &())?,
        }
        map.end()
    }
}

/// `"name": ..`, and `"name_encoding":"base64"` after it when the bytes are base64.
fn put_bytes<M: SerializeMap>(
    map: &mut M,
    name: &str,
    bytes: &[u8],
    encoding: Encoding,
) -> Result<(), M::Error> {
    match (std::str::from_utf8(bytes), encoding) {
        (Ok(s), Encoding::Text) => map.serialize_entry(name, s),
        _ => {
            map.serialize_entry(name, &BASE64.encode(bytes))?;
            map.serialize_entry(&format!("{name}_encoding"), "base64")
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

/// The seed's `{"results":[...]}` written piece by piece, for replies streamed as the
/// iterator goes: `results_open`, a `results_entry` per pair, then `results_close`. The bytes
/// are those `results` serializes to; a reply cut short by a limit ends with
/// `"next_start_key"`, the first key it left out (with `next_start_key_encoding` when that
/// key is not UTF-8, as for keys and values).
pub(super) fn results_open(out: &mut Vec<u8>) {
    out.extend_from_slice(br#"{"results":["#);
}

pub(super) fn results_entry(
    out: &mut Vec<u8>,
    first: bool,
    key: &[u8],
    value: &[u8],
    encoding: Encoding,
) {
    if !first {
        out.push(b',');
    }
    // Serializing our own types to memory cannot fail.
    let _ = serde_json::to_writer(&mut *out, &key_value_as(key, Some(value), encoding));
}

pub(super) fn results_close(out: &mut Vec<u8>, next_start_key: Option<&[u8]>, encoding: Encoding) {
    out.push(b']');
    if let Some(key) = next_start_key {
        let mut next = serde_json::Serializer::new(Vec::new());
        if let Ok(mut map) = next.serialize_map(None) {
            let _ = put_bytes(&mut map, "next_start_key", key, encoding);
            let _ = map.end();
        }
        // `{"next_start_key":...}` without its braces, after a comma.
        let next = next.into_inner();
        out.push(b',');
        out.extend_from_slice(&next[1..next.len() - 1]);
    }
    out.push(b'}');
}

/// `key_value_as(key, Some(value), encoding)` written a piece at a time, for a value too
/// large to escape in one go: `value_prefix(key)`, the value's characters as `value_piece`s
/// (whole UTF-8 characters, or for base64, multiples of 3 bytes), then `value_suffix`.
/// `value_json_len` is how many bytes the pieces come to.
pub(super) fn value_prefix(key: &[u8], encoding: Encoding) -> Vec<u8> {
    // The object with the key alone, its closing brace replaced by the value's opening.
    let mut prefix = serde_json::Serializer::new(Vec::new());
    if let Ok(mut map) = prefix.serialize_map(None) {
        let _ = put_bytes(&mut map, "key", key, encoding);
        let _ = map.end();
    }
    let mut prefix = prefix.into_inner();
    prefix.pop();
    prefix.extend_from_slice(br#","value":""#);
    prefix
}

pub(super) fn value_piece(out: &mut Vec<u8>, piece: &[u8], utf8: bool) {
    match std::str::from_utf8(piece) {
        Ok(text) if utf8 => {
            // The string with its quotes, moved back over the opening one.
            let start = out.len();
            let _ = serde_json::to_writer(&mut *out, text);
            out.pop();
            out.copy_within(start + 1.., start);
            out.pop();
        }
        _ => out.extend_from_slice(BASE64.encode(piece).as_bytes()),
    }
}

pub(super) fn value_suffix(utf8: bool) -> &'static [u8] {
    if utf8 {
        br#""}"#
    } else {
        br#"","value_encoding":"base64"}"#
    }
}

/// The length of a value's characters in JSON, escaped as serde_json escapes strings
/// (`"` and `\` and control characters; nothing else), or as base64.
pub(super) fn value_json_len(value: &[u8], utf8: bool) -> usize {
    if !utf8 {
        return value.len().div_ceil(3) * 4;
    }
    let escaped = |&b: &u8| match b {
        b'"' | b'\\' | 0x08 | 0x09 | 0x0A | 0x0C | 0x0D => 2,
        0..0x20 => 6,
        _ => 1,
    };
    value.iter().map(escaped).sum()
}

fn items(n: usize) -> String {
    if n == 1 {
        "1 item".into()
    } else {
        format!("{n} items")
    }
}

/// Parses the JSON batch body into its keys and values, naming the field at fault. With
/// `"encoding":"base64"` the strings are base64, and the columns hold the bytes they spell.
pub fn parse_batch_json(body: &[u8]) -> Result<(Column, Column), String> {
    let fields = decode_fields(body, "the batch body must be a JSON object")?;
    let encoding = Encoding::named(fields.encoding.as_deref().map(str::as_bytes))?;
    let mut keys = fields.keys.ok_or("missing field \"keys\"")?;
    let mut values = fields.values.ok_or("missing field \"values\"")?;
    if encoding == Encoding::Base64 {
        keys = from_base64(&keys, "keys")?;
        values = from_base64(&values, "values")?;
    }
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

/// The bytes a column of base64 strings spells (nulls stay null).
fn from_base64(column: &Column, name: &str) -> Result<Column, String> {
    let mut decoded = Column::default();
    for (i, entry) in column.iter().enumerate() {
        let bytes = entry
            .map(|e| {
                BASE64
                    .decode(e)
                    .map_err(|err| format!("{name}[{i}] is not base64: {err}"))
            })
            .transpose()?;
        decoded.push_bytes(bytes.as_deref())?;
    }
    Ok(decoded)
}

/// The batch a parsed JSON body describes: a put per string value, a delete per `null`.
pub fn json_batch(keys: &Column, values: &Column) -> crate::WriteBatch {
    let keys = keys.iter().map(Option::unwrap_or_default);
    keys.zip(values.iter()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_batches_are_checked_field_by_field() {
        let (keys, values) =
            parse_batch_json(br#"{"keys":["a","b"],"values":["1",null]}"#).unwrap();
        let batch = json_batch(&keys, &values);
        let ops: Vec<_> = batch.ops().collect::<Result<_, _>>().unwrap();
        let (put, delete) = (crate::key::Kind::Put, crate::key::Kind::Delete);
        assert_eq!(ops, [(put, &b"a"[..], &b"1"[..]), (delete, b"b", b"")]);
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
            let err = parse_batch_json(input).unwrap_err();
            assert!(err.contains(msg), "{err}");
        }
    }

    #[test]
    fn pieces_add_up_to_the_whole_json() {
        let ascii: Vec<u8> = (0..=127).collect();
        let mut mixed = "ключ ✓ \"q\" \\ 🦀\u{7f}".repeat(50).into_bytes();
        mixed.extend_from_slice(&ascii);
        let binary: Vec<u8> = (0..=255).cycle().take(1000).collect();
        let (text, base64) = (Encoding::Text, Encoding::Base64);
        for (key, value, encoding) in [
            (&b"k"[..], &mixed[..], text),
            (b"k", &ascii[..], text),
            (b"\xff key", &binary[..], text),
            (b"k", b"", text),
            (b"k", &ascii[..], base64),
            (b"\xff key", &mixed[..], base64),
            (b"k", b"", base64),
        ] {
            let whole = serde_json::to_vec(&key_value_as(key, Some(value), encoding)).unwrap();
            let utf8 = encoding == text && std::str::from_utf8(value).is_ok();
            let mut out = value_prefix(key, encoding);
            let prefix = out.len();
            // Pieces of 3 bytes at a time, backed off to a character boundary.
            let mut done = 0;
            while done < value.len() {
                let mut end = (done + 3).min(value.len());
                while utf8 && std::str::from_utf8(&value[done..end]).is_err() {
                    end += 1;
                }
                value_piece(&mut out, &value[done..end], utf8);
                done = end;
            }
            assert_eq!(out.len() - prefix, value_json_len(value, utf8));
            out.extend_from_slice(value_suffix(utf8));
            assert_eq!(
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&whole)
            );
        }
    }

    #[test]
    fn results_written_in_pieces_match_the_whole() {
        let pairs = vec![
            (b"a".to_vec(), b"1".to_vec()),
            (b"\xfe".to_vec(), b"\"x\"\n".to_vec()),
        ];
        let whole = serde_json::to_vec(&results(&pairs)).unwrap();
        let mut out = Vec::new();
        results_open(&mut out);
        for (i, (k, v)) in pairs.iter().enumerate() {
            results_entry(&mut out, i == 0, k, v, Encoding::Text);
        }
        results_close(&mut out, None, Encoding::Text);
        assert_eq!(out, whole);
        let mut empty = Vec::new();
        results_open(&mut empty);
        results_close(&mut empty, None, Encoding::Text);
        assert_eq!(empty, serde_json::to_vec(&results(&[])).unwrap());

        let mut cut = Vec::new();
        results_open(&mut cut);
        results_entry(&mut cut, true, b"a", b"1", Encoding::Text);
        results_close(&mut cut, Some(b"b"), Encoding::Text);
        assert_eq!(
            String::from_utf8(cut).unwrap(),
            r#"{"results":[{"key":"a","value":"1"}],"next_start_key":"b"}"#
        );
        let mut cut = Vec::new();
        results_open(&mut cut);
        results_close(&mut cut, Some(b"\xff"), Encoding::Text);
        assert_eq!(
            String::from_utf8(cut).unwrap(),
            r#"{"results":[],"next_start_key":"/w==","next_start_key_encoding":"base64"}"#
        );
        let mut all = Vec::new();
        results_open(&mut all);
        results_entry(&mut all, true, b"a", b"1", Encoding::Base64);
        results_close(&mut all, Some(b"b"), Encoding::Base64);
        assert_eq!(
            String::from_utf8(all).unwrap(),
            r#"{"results":[{"key":"YQ==","key_encoding":"base64","value":"MQ==","value_encoding":"base64"}],"next_start_key":"Yg==","next_start_key_encoding":"base64"}"#
        );
    }

    #[test]
    fn base64_bodies_spell_any_bytes() {
        let (keys, values) = parse_batch_json(
            br#"{"encoding":"base64","keys":["/wA=","YQ=="],"values":["AAEC",null]}"#,
        )
        .unwrap();
        let keys: Vec<_> = keys.iter().map(|k| k.unwrap().to_vec()).collect();
        let values: Vec<_> = values.iter().map(|v| v.map(<[u8]>::to_vec)).collect();
        assert_eq!(keys, [b"\xff\x00".to_vec(), b"a".to_vec()]);
        assert_eq!(values, [Some(b"\x00\x01\x02".to_vec()), None]);
        for (body, message) in [
            (
                &br#"{"encoding":"base64","keys":["*"],"values":["AA=="]}"#[..],
                "keys[0] is not base64",
            ),
            (
                br#"{"encoding":"base64","keys":["YQ=="],"values":["!"]}"#,
                "values[0] is not base64",
            ),
            (
                br#"{"encoding":"base64","keys":[""],"values":["AA=="]}"#,
                "keys[0] is empty",
            ),
            (
                br#"{"encoding":"hex","keys":["61"],"values":["62"]}"#,
                "unknown encoding \"hex\"",
            ),
        ] {
            let err = parse_batch_json(body).unwrap_err();
            assert!(err.contains(message), "{err}");
        }
        assert_eq!(
            Encoding::Base64.decode("AP8=", "key").unwrap().as_ref(),
            b"\x00\xff"
        );
        assert!(
            Encoding::Base64
                .decode("@", "key")
                .unwrap_err()
                .contains("key is not base64")
        );
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
