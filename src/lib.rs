//! ccetl: contact-center call data and recordings into a Parquet warehouse.
//!
//! Layers, in the order data flows: `source` (extract and transform, one module per external
//! system, listed in `source::KINDS`) → `sink` (Parquet, audio, manifests in object
//! storage), with `state` (DuckDB) recording what is committed, `pipeline` running the
//! stages, and `http`/`auth` shared by all sources. `sim` is the built-in simulator the demo and the tests run against.

// `pub` is what other crates (the binary, tests, benches) may use; the rest says pub(crate).
#![warn(unreachable_pub)]
// Every public item says what it is for (its docs are the reference `cargo doc` builds).
#![warn(missing_docs)]
pub mod auth;
pub mod blocking;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod extract;
pub mod failpoint;
pub mod history;
pub mod http;
pub mod memory;
pub mod pipeline;
pub mod process;
pub mod progress;
pub mod query;
pub mod report;
pub mod schema;
pub mod secret;
pub mod serve;
pub mod sim;
pub mod sink;
pub mod source;
pub mod state;
pub mod tables;
pub mod units;
pub mod window;

#[cfg(test)]
mod tests;
