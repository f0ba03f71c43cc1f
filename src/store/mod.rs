//! Owns persistence: everything review-lsp keeps between runs.
//!
//! Today that is the result cache ([`Cache`]): findings keyed by what produced them, so an
//! unchanged file is not reviewed twice, across editor sessions and CLI runs. Review artifacts
//! and history will live here later. Nothing outside this module knows the storage engine
//! (redb) or the file layout, and nothing here can make a review fail: storage problems degrade
//! to cache misses.

pub mod cache;

pub use cache::{Cache, CacheKey, CacheStats};
