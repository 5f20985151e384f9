//! Benchmarks for jwt-exchange: small bench binaries that print the median, the min–max and the
//! ratio to a raw-crypto baseline measured **in the same run** (interleaved with the subject,
//! so a busy machine slows both alike).
//!
//! | binary | what |
//! |---|---|
//! | `login` | in-process `Exchange::login` (memory store) per algorithm vs. raw aws-lc-rs signature verification with a pre-parsed key; `jsonwebtoken` decode for comparison; cost vs. groups per token |
//! | `authenticate` | in-process `authenticate` + `authorize` vs. raw HMAC-SHA256 verification of the bearer; cost vs. policies per session |
//! | `scale` | login and authenticate rates with 1k vs. 1M stored sessions; bytes per session |
//! | `jwks` | cold-start stampede (1,000 concurrent logins, new `kid`) and random-`kid` flood |
//! | `http` | loopback load generator: HTTP login, `GET /auth/check` vs. an unauthenticated route, vs. `jsonwebtoken::decode` per request in an axum middleware |
//! | `redis` | `authenticate` with the Redis store |
//!
//! Every binary takes `--quick` (a few seconds, for CI: it checks that the bench works, never a
//! timing). See `docs/performance.md` for the commands and the measured figures.

pub mod fixture;
pub mod harness;
pub mod load;

pub use harness::{Bench, Case, Stats};
