//! The table reader: footer, index, filter and properties at open, then data blocks by
//! scans, point reads and a block-by-block check; and the block and filter decoders alone.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    lsmdb::fuzzing::table(data);
    lsmdb::fuzzing::block(data);
});
