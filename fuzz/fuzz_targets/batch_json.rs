//! Batch bodies as the HTTP server's `POST /keys/batch` and `lsmdb batch` parse them: the
//! seed's JSON `{"keys":[..],"values":[..]}` (or in base64, `"encoding":"base64"`), decoded
//! field by field (`lsmdb::server::json`), then the size checks of the batch built from it.
//! Each text entry read must also come back unchanged through the `{"key":..,"value":..}`
//! the server replies with.
#![no_main]

use lsmdb::server::json;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok((keys, values)) = json::parse_batch_json(data) else {
        return;
    };
    let batch = json::json_batch(&keys, &values);
    let _ = lsmdb::fuzzing::validate_batch(&batch);
    for (key, value) in keys.iter().zip(values.iter()).take(4) {
        let (Some(key), Some(value)) = (key, value) else {
            continue;
        };
        // With "encoding":"base64" a body can spell any bytes; those that are not UTF-8 come
        // back base64, which the plain-text check below does not read.
        if std::str::from_utf8(key).is_err() || std::str::from_utf8(value).is_err() {
            continue;
        }
        let reply = serde_json::to_vec(&json::key_value(key, Some(value))).unwrap();
        let fields = json::decode_fields(&reply, "an object").unwrap();
        assert_eq!(fields.key.as_deref().map(str::as_bytes), Some(key));
        assert_eq!(fields.value.as_deref().map(str::as_bytes), Some(value));
    }
});
