//! Fuzz target `login_body`: see `jwt_exchange_fuzz::check_login_body` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jwt_exchange_fuzz::check_login_body(data);
});
