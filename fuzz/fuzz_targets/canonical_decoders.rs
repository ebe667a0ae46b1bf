#![no_main]
//! `vouchdb::fuzzing::canonical_decoders` (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouchdb::fuzzing::canonical_decoders(data));
