//! Integration tests: the real `aligndata` binary, run in a fresh temp directory per test.
//!
//! One test binary (not one per file) keeps link time down on small machines.

mod cli;
mod dedup;
mod generate;
mod ingest;
mod label;
mod pipeline;
mod select;
mod serve;
mod taxonomy;
mod util;
