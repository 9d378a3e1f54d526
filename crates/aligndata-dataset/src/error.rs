//! The one error type of this crate.

use std::io;
use std::path::PathBuf;

/// Everything that can stop a dataset read or write.
///
/// Each variant names the file (and line, where there is one) and ends with a `hint:` line that
/// says what to do next. Problems with single rows of raw input are not errors: they come back as
/// [`BadRow`](crate::BadRow) so that one broken line never stops an ingest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// A file or directory the caller named does not exist.
    #[error("{} does not exist\nhint: check the path (relative paths start from the current directory)", .path.display())]
    NotFound {
        /// The missing path.
        path: PathBuf,
    },
    /// The operating system refused a read, write, rename or fsync.
    #[error("cannot {action} {}: {source}\nhint: check permissions and free disk space", .path.display())]
    Io {
        /// What was being done (`read`, `create`, `rename`, `fsync`, …).
        action: &'static str,
        /// The path it was being done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// A directory was opened as a dataset but holds no `manifest.json`.
    #[error("no manifest.json in {}: is this an aligndata dataset?\nhint: pass the directory a stage wrote (it holds manifest.json and part-* shards), or read raw files with `aligndata ingest`", .dir.display())]
    NotADataset {
        /// The directory.
        dir: PathBuf,
    },
    /// A dataset write would replace a directory that is not a dataset.
    #[error("refusing to replace {}: it exists, is not empty and is not an aligndata dataset (no manifest.json)\nhint: choose another output directory, or remove this one yourself if nothing in it is needed", .dir.display())]
    WouldClobber {
        /// The directory that would have been replaced.
        dir: PathBuf,
    },
    /// `manifest.json` exists but does not parse.
    #[error("invalid manifest {}: {source}\nhint: the dataset is damaged or was written by another tool; re-run the stage that wrote it", .path.display())]
    BadManifest {
        /// Path of the manifest.
        path: PathBuf,
        /// The parse error, with its line and column.
        #[source]
        source: serde_json::Error,
    },
    /// The manifest was written by a newer aligndata.
    #[error("{} has schema_version {found}, but this aligndata reads up to {supported}\nhint: upgrade aligndata", .path.display())]
    UnsupportedSchema {
        /// Path of the manifest.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// A line of a record file (JSONL) is not a valid record.
    #[error("{}:{line}: not a valid aligndata record: {source}\nhint: the file is damaged or was not written by aligndata; re-run the stage that wrote it, or read it as raw input with `aligndata ingest`", .path.display())]
    BadRecord {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: u64,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A record could not be written as JSON (a bug: records always serialise).
    #[error("{}: cannot serialise record {id}: {source}\nhint: this is a bug in aligndata; please report it", .path.display())]
    SerializeRecord {
        /// The file being written.
        path: PathBuf,
        /// The record id.
        id: String,
        /// The serialiser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The file's extension names no format this crate reads.
    #[error("{}: unknown file format\nhint: {expected}", .path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
        /// The extensions that are understood.
        expected: &'static str,
    },
    /// The Parquet library failed to read or write a file.
    #[error("{}: parquet error: {source}\nhint: if reading, the file may be damaged or not Parquet; if writing, check free disk space", .path.display())]
    Parquet {
        /// The file.
        path: PathBuf,
        /// The Parquet error.
        #[source]
        source: parquet::errors::ParquetError,
    },
    /// Converting between records and Arrow arrays failed.
    #[error("{}: row {row}: cannot convert between records and Arrow columns: {source}\nhint: the Parquet file's columns do not match the aligndata record schema; write it with aligndata, or ingest it as raw input", .path.display())]
    Arrow {
        /// The file.
        path: PathBuf,
        /// 1-based row where the failing batch starts.
        row: u64,
        /// The conversion error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Raw input lacks the column or field that holds the text (or id).
    #[error("{}: no column {column:?}; the columns are: {available}\nhint: set the text field (or id field) to one of these", .path.display())]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns that exist, comma separated.
        available: String,
    },
    /// A raw input column holds something other than text.
    #[error("{}: column {column:?} has type {data_type}, not text\nhint: choose a text column as the text field", .path.display())]
    ColumnNotText {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
        /// Its Arrow type.
        data_type: String,
    },
    /// The CSV header could not be read.
    #[error("{}: cannot read the CSV header: {source}\nhint: the first line must name the columns", .path.display())]
    CsvHeader {
        /// The file.
        path: PathBuf,
        /// The CSV error.
        #[source]
        source: csv::Error,
    },
}

impl DatasetError {
    /// Wraps an IO error, turning "not found" into [`DatasetError::NotFound`].
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        let path = path.into();
        if source.kind() == io::ErrorKind::NotFound {
            return DatasetError::NotFound { path };
        }
        DatasetError::Io {
            action,
            path,
            source,
        }
    }
}
