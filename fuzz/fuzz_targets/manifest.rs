//! The manifest reader: CURRENT, record framing, version edits, and their replay into a
//! version as an open does it.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lsmdb::fuzzing::manifest(data));
