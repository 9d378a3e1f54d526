//! `manifest.json`: what a dataset directory holds and how it was made.

use std::collections::BTreeMap;

use aligndata_core::Record;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Format;

/// The manifest version this build writes, and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// The contents of a dataset's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Version of this manifest's layout ([`SCHEMA_VERSION`] when written by this build).
    pub schema_version: u32,
    /// Version of the aligndata that wrote the dataset.
    pub tool_version: String,
    /// When the dataset was finished, RFC 3339 in UTC.
    pub created_at: String,
    /// The stage that wrote it (`ingest`, `label`, `dedup`, …).
    pub stage: String,
    /// The stage's resolved configuration.
    pub config: serde_json::Value,
    /// SHA-256 of `config` as canonical JSON (object keys sorted), see [`config_hash`].
    pub config_hash: String,
    /// Paths or ids of the datasets this one was made from.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Format of every shard.
    pub format: Format,
    /// The data files, in record order.
    pub shards: Vec<ShardInfo>,
    /// Record counts.
    pub counts: Counts,
    /// The stage's own summary figures.
    #[serde(default)]
    pub extra: serde_json::Value,
}

/// One data file of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// File name, relative to the dataset directory.
    pub file: String,
    /// Records in the file.
    pub records: u64,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, 64 lowercase hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// Record counts of a dataset, computed while it is written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// All records.
    pub total: u64,
    /// Records without flags.
    pub kept: u64,
    /// Records per source kind (`synthetic`, `real`, `feedback`).
    #[serde(default)]
    pub by_source: BTreeMap<String, u64>,
    /// Records carrying each flag kind (a record with two flags counts under both).
    #[serde(default)]
    pub by_flag: BTreeMap<String, u64>,
    /// Rows written to `quarantine.jsonl`.
    #[serde(default)]
    pub quarantined: u64,
}

/// What the stage says about a dataset when it finishes writing it; the rest of the
/// [`Manifest`] is computed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestFields {
    /// The stage name.
    pub stage: String,
    /// The stage's resolved configuration (hashed into `config_hash`).
    pub config: serde_json::Value,
    /// Paths or ids of input datasets.
    pub parents: Vec<String>,
    /// Stage summary figures.
    pub extra: serde_json::Value,
}

impl Counts {
    /// Counts one record.
    pub fn add(&mut self, record: &Record) {
        self.total += 1;
        if record.is_kept() {
            self.kept += 1;
        }
        *self
            .by_source
            .entry(record.source.as_str().to_string())
            .or_default() += 1;
        for flag in &record.flags {
            *self.by_flag.entry(flag.kind.clone()).or_default() += 1;
        }
    }
}

/// SHA-256 (hex) of a configuration as canonical JSON: object keys sorted at every level, no
/// whitespace. Equal configurations hash equal whatever order their keys were written in.
pub fn config_hash(config: &serde_json::Value) -> String {
    let mut canonical = String::new();
    write_canonical(config, &mut canonical);
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}
