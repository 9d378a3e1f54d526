//! The pipeline stages, one module each. A stage reads datasets (or raw files), never mutates
//! them, and writes a new dataset directory atomically through `aligndata_dataset`.
//!
//! Stages take explicit config structs and a progress callback; they never read environment
//! variables or print. The binary turns flags into configs and draws the progress.

pub mod clean;
pub mod dedup;
pub mod diversity;
pub mod export;
pub mod feedback;
pub mod generate;
pub mod ingest;
pub mod judge;
pub mod label;
pub mod pii;
pub mod pipeline;
pub mod plan;
pub mod report;
pub mod respond;
pub mod safety;
pub mod select;
