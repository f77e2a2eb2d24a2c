//! The WAL reader: record framing (strict and salvage), batch payloads, memtable inserts.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| lsmdb::fuzzing::wal(data));
