//! Request bodies as `lsmdb batch` (and the HTTP server's batch route) parse them: the
//! seed's JSON `{"keys":[..],"values":[..]}` or KEY<TAB>VALUE lines, then the size checks
//! of the batch built from them.
//!
//! Note: `lsmdb serve` is being written on another branch; when it lands, its request
//! handling (routing, query strings, base64 bodies) should get a target of its own, built
//! on a library-level parse function rather than this `#[path]` include of the CLI's file.
#![no_main]

#[allow(dead_code)]
#[path = "../../src/bin/lsmdb/format.rs"]
mod format;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(entries) = format::parse_batch(data) {
        let batch = format::to_batch(&entries);
        let _ = lsmdb::fuzzing::validate_batch(&batch);
        for (k, v) in entries.iter().take(4) {
            let _ = format::escape(k);
            let _ = format::key_value(k, v.as_deref());
        }
    }
});
