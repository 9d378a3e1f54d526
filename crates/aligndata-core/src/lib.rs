//! The vocabulary every aligndata stage shares.
//!
//! - [`Record`]: one datapoint as it moves through the pipeline; each stage adds fields, none
//!   removes them.
//! - [`Taxonomy`]: the user's dimensions and values, loaded from YAML with every problem located
//!   by file, line and field.
//!
//! This crate does no network IO and knows no stage; it only reads a taxonomy file when asked.
#![deny(missing_docs)]

pub mod record;
pub mod taxonomy;
pub mod yaml;

pub use record::{Flag, Label, Provenance, Record, Response, Score, SourceKind};
pub use taxonomy::{Cell, Dimension, Exclusion, Taxonomy, TaxonomyError, TaxonomyProblem};
