//! Datasets on disk: how aligndata stores records between stages, and how it reads raw text.
//!
//! Every stage reads a dataset and writes a new one; this crate is the only code that touches
//! their files.
//!
//! # Main types
//!
//! - [`DatasetWriter`] writes a dataset directory atomically; [`Dataset`] opens one and streams
//!   its [`Record`](aligndata_core::Record)s in bounded memory.
//! - [`Manifest`] is `manifest.json`: provenance (stage, config and its hash, parents, tool
//!   version, time), shard list with sizes and SHA-256, and [`Counts`].
//! - [`write_records`], [`read_records`], [`RecordWriter`] and [`RecordReader`] handle single
//!   record files in any [`Format`]: JSONL, JSONL + zstd, Parquet. The three hold exactly the
//!   same information: JSONL → Parquet → JSONL gives back the same bytes.
//! - [`read_input`] turns raw files (JSONL, CSV, TSV, Parquet; see [`InputSpec`]) into
//!   [`RawRow`]s for ingest; a row that cannot be read is a [`BadRow`], never a stop, and
//!   belongs in the quarantine as a [`QuarantineEntry`].
//! - [`write_atomic`] writes a small file (a report) so that a crash leaves the old or the new.
//! - [`DatasetError`] is the one error type; each variant names the file and says what to do.
//!
//! # On-disk layout
//!
//! ```text
//! my-dataset/
//!   manifest.json        Manifest, pretty-printed JSON; written last
//!   part-00000.jsonl     shards of up to WriterOptions::shard_records records each, in order;
//!   part-00001.jsonl     .jsonl, .jsonl.zst or .parquet (one format per dataset)
//!   quarantine.jsonl     optional: one QuarantineEntry {file, line, reason, raw} per line
//! ```
//!
//! A JSONL shard holds one serde_json [`Record`](aligndata_core::Record) per line. A Parquet
//! shard has the top-level columns `id`, `text`, `source` (string), `provenance` (struct),
//! `intended` (map string → string), `labels`, `scores`, `flags`, `responses` (lists of
//! structs), zstd pages and row groups of 64 Ki rows; pyarrow, pandas and Hugging Face
//! `datasets` read it directly. An empty dataset still has one (empty) shard.
//!
//! While being written the directory is `.<name>.partial-<pid>` beside its final place; see
//! [`DatasetWriter`] for how it is swapped in and the one crash window.
//!
//! # Example
//!
//! ```no_run
//! use std::path::Path;
//! use aligndata_core::{Record, SourceKind};
//! use aligndata_dataset::{Dataset, DatasetWriter, ManifestFields, WriterOptions};
//!
//! # fn main() -> Result<(), aligndata_dataset::DatasetError> {
//! let dir = Path::new("out/ingested");
//! let mut writer = DatasetWriter::create(dir, WriterOptions::default())?;
//! writer.push(&Record::new(SourceKind::Real, "I froze in my presentation".into()))?;
//! let manifest = writer.finish(ManifestFields { stage: "ingest".into(), ..Default::default() })?;
//! assert_eq!(manifest.counts.total, 1);
//! for record in Dataset::open(dir)?.records() {
//!     println!("{}", record?.text);
//! }
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs)]

mod atomic;
mod dataset;
mod error;
mod format;
mod input;
mod manifest;
mod parquet_io;
mod records;
mod shard_spec;

pub use atomic::write_atomic;
pub use dataset::{
    Dataset, DatasetRecords, DatasetWriter, MANIFEST_FILE, QUARANTINE_FILE, QuarantineEntry,
    WriterOptions,
};
pub use error::DatasetError;
pub use format::{Format, InputFormat};
pub use input::{BadRow, InputRow, InputRows, InputSpec, RAW_EXCERPT_BYTES, RawRow, read_input};
pub use manifest::{Counts, Manifest, ManifestFields, SCHEMA_VERSION, ShardInfo, config_hash};
pub use parquet_io::{ROW_GROUP_ROWS, record_fields};
pub use records::{FileSummary, RecordReader, RecordWriter, read_records, write_records};
pub use shard_spec::ShardSpec;
