#[path = "it/store.rs"]
mod store;
