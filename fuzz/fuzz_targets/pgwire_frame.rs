#![no_main]
//! `vouchdb::fuzzing::pgwire_frame` (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouchdb::fuzzing::pgwire_frame(data));
