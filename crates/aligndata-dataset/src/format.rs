//! File formats for records and for raw input, chosen from the file name.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::DatasetError;

/// A format that holds [`Record`](aligndata_core::Record)s: dataset shards and `write_records`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Format {
    /// One JSON record per line (`.jsonl`).
    #[serde(rename = "jsonl")]
    Jsonl,
    /// JSONL compressed with zstd (`.jsonl.zst`).
    #[serde(rename = "jsonl.zst")]
    JsonlZst,
    /// Apache Parquet with zstd pages (`.parquet`).
    #[serde(rename = "parquet")]
    Parquet,
}

/// A format raw input text can come in (see [`read_input`](crate::read_input)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    /// JSON lines (`.jsonl`, `.ndjson`).
    Jsonl,
    /// zstd-compressed JSON lines (`.jsonl.zst`, `.ndjson.zst`).
    JsonlZst,
    /// Comma-separated values with a header row (`.csv`).
    Csv,
    /// Tab-separated values with a header row (`.tsv`, `.tab`).
    Tsv,
    /// Apache Parquet (`.parquet`).
    Parquet,
}

const RECORD_EXTENSIONS: &str = "record files end in .jsonl, .jsonl.zst or .parquet";
const INPUT_EXTENSIONS: &str = "raw input files end in .jsonl, .ndjson, .jsonl.zst, .csv, .tsv, .tab or .parquet; or set the input format explicitly";

impl Format {
    /// The format a file name implies.
    pub fn from_path(path: &Path) -> Result<Format, DatasetError> {
        let name = file_name_lower(path);
        if name.ends_with(".jsonl.zst") {
            return Ok(Format::JsonlZst);
        }
        if name.ends_with(".jsonl") {
            return Ok(Format::Jsonl);
        }
        if name.ends_with(".parquet") {
            return Ok(Format::Parquet);
        }
        Err(DatasetError::UnknownFormat {
            path: path.to_path_buf(),
            expected: RECORD_EXTENSIONS,
        })
    }

    /// The file extension, without the leading dot (`jsonl`, `jsonl.zst`, `parquet`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::JsonlZst => "jsonl.zst",
            Format::Parquet => "parquet",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

impl InputFormat {
    /// The format a file name implies.
    pub fn from_path(path: &Path) -> Result<InputFormat, DatasetError> {
        let name = file_name_lower(path);
        let by_suffix = [
            (".jsonl.zst", InputFormat::JsonlZst),
            (".ndjson.zst", InputFormat::JsonlZst),
            (".jsonl", InputFormat::Jsonl),
            (".ndjson", InputFormat::Jsonl),
            (".csv", InputFormat::Csv),
            (".tsv", InputFormat::Tsv),
            (".tab", InputFormat::Tsv),
            (".parquet", InputFormat::Parquet),
        ];
        for (suffix, format) in by_suffix {
            if name.ends_with(suffix) {
                return Ok(format);
            }
        }
        Err(DatasetError::UnknownFormat {
            path: path.to_path_buf(),
            expected: INPUT_EXTENSIONS,
        })
    }
}

fn file_name_lower(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default()
}
