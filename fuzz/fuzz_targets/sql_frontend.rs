#![no_main]
//! `vouchdb::fuzzing::sql_frontend` (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouchdb::fuzzing::sql_frontend(data));
