//! Integration tests: the real `aligndata` binary, run in a fresh temp directory per test.
//!
//! One test binary (not one per file) keeps link time down on small machines.

mod cli;
mod dedup;
mod export;
mod feedback;
mod generate;
mod ingest;
mod judge;
mod label;
mod pipeline;
mod report;
mod respond;
mod select;
mod serve;
mod serve_bench;
mod shard;
mod taxonomy;
mod util;
