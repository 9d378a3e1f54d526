//! Integration tests: the real `aligndata` binary, run in a fresh temp directory per test.
//!
//! One test binary (not one per file) keeps link time down on small machines.

mod cli;
mod dedup;
mod export;
mod generate;
mod ingest;
mod label;
mod pipeline;
mod report;
mod respond;
mod select;
mod serve;
mod taxonomy;
mod util;
