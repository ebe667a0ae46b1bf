#![no_main]
//! `vouchdb::fuzzing::proofs_checkpoints` (docs/FUZZING.md).

libfuzzer_sys::fuzz_target!(|data: &[u8]| vouchdb::fuzzing::proofs_checkpoints(data));
