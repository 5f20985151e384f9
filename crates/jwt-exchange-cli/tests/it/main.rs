//! End-to-end tests of the `jwt-exchange` binary over real sockets.
#![allow(clippy::unwrap_used, clippy::too_many_lines, unreachable_pub)]

mod attacks;
mod common;
mod faults;
mod multi;
mod probe;
mod serve;
mod soak;
mod store_faults;
mod tools;
