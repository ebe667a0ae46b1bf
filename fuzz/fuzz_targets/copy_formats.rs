#![no_main]
//! `vouchdb::fuzzing::copy_formats` (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouchdb::fuzzing::copy_formats(data));
