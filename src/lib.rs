//! review-lsp: a language server (and CLI) that reviews code with agents.
//!
//! The data flows `server → scheduler → review → llm / store`; `cli` drives the same
//! `review` engine without the editor. Only `server` knows LSP types.

pub mod cli;
pub mod config;
pub mod escape;
pub mod lines;
pub mod llm;
pub mod logging;
pub mod metrics;
pub mod panics;
pub mod review;
pub mod scheduler;
pub mod server;
pub mod store;
pub mod syntax;
pub mod workspace;
