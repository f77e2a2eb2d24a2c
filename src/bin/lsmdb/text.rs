//! Batch input as the command line takes it, beside the JSON shapes it shares with the HTTP
//! server (`lsmdb::server::json`): the seed's JSON body, or `KEY<TAB>VALUE` lines. (Bytes
//! shown as text are spelled by `crate::words`.)

use lsmdb::server::json;

/// A batch parsed from user input: `(key, Some(value))` to put, `(key, None)` to delete.
pub type Entries = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// Parses the seed's JSON batch body `{"keys":[...],"values":[...]}` (a `null` value is a
/// delete), or, for input that is not a JSON object, one `KEY<TAB>VALUE` per line.
pub fn parse_batch(input: &[u8]) -> Result<Entries, String> {
    let text = std::str::from_utf8(input).map_err(|e| format!("batch input is not UTF-8: {e}"))?;
    if text.trim_start().starts_with('{') {
        let (keys, values) = json::parse_batch_json(input)?;
        Ok(keys
            .iter()
            .zip(values.iter())
            .map(|(k, v)| (k.unwrap_or_default().to_vec(), v.map(<[u8]>::to_vec)))
            .collect())
    } else {
        parse_batch_lines(text)
    }
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
    entries.iter().map(|(k, v)| (k, v.as_ref())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_are_json_objects_or_tab_separated_lines() {
        let json = parse_batch(br#" {"keys":["a","b"],"values":["1",null]}"#).unwrap();
        assert_eq!(
            json,
            vec![(b"a".to_vec(), Some(b"1".to_vec())), (b"b".to_vec(), None)]
        );
        let err = parse_batch(br#"{"keys":["a"]}"#).unwrap_err();
        assert!(err.contains("missing field \"values\""), "{err}");
        assert!(parse_batch(b"\xff").unwrap_err().contains("not UTF-8"));
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
}
