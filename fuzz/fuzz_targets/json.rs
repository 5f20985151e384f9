//! Fuzz target `json`: see `jwt_exchange_fuzz::check_json` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jwt_exchange_fuzz::check_json(data);
});
