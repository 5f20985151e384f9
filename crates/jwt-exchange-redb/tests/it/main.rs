//! Integration tests of the redb store: conformance, durability across restarts and crashes,
//! and damaged files.

mod common;
mod conformance;
mod corrupt;
mod durability;
