//! End-to-end tests of the `jwt-exchange` binary over real sockets.
#![allow(clippy::unwrap_used, clippy::too_many_lines, unreachable_pub)]

mod common;
mod serve;
mod tools;
