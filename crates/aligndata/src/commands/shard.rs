//! `--shard I/N` for the stages that read datasets (label, dedup).
//!
//! The stage is given, instead of each input dataset, a copy holding only this shard's records
//! (by [`ShardSpec::contains_id`]), written to a hidden temporary directory beside the output and
//! removed when the command ends. The copy costs one streaming pass over the input and 1/N of its
//! size on disk; in exchange every stage gets sharding without knowing about it. Each copy is
//! named after its input (`.OUT.shard-I-of-N/NAME`), so the names a stage records (manifest
//! parents, the dataset a duplicate's keeper came from) still say which input a record came from.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use aligndata_dataset::{Dataset, DatasetWriter, ManifestFields, ShardSpec, WriterOptions};

/// The datasets a stage should read, and the temporary copies behind them (kept until dropped).
pub struct ShardInputs {
    /// The inputs themselves without `--shard`, else this shard's copies.
    pub paths: Vec<PathBuf>,
    _dir: Option<tempfile::TempDir>,
}

/// This shard of each of `datasets` (all of them without `shard`).
pub fn narrow(datasets: &[PathBuf], shard: Option<ShardSpec>, out: &Path) -> Result<ShardInputs> {
    let Some(shard) = shard else {
        return Ok(ShardInputs {
            paths: datasets.to_vec(),
            _dir: None,
        });
    };
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("could not create {}", parent.display()))?;
    let stem = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let dir = tempfile::Builder::new()
        .prefix(&format!(
            ".{stem}.shard-{}-of-{}.",
            shard.index, shard.count
        ))
        .tempdir_in(&parent)
        .with_context(|| {
            format!(
                "could not create a temporary directory in {}",
                parent.display()
            )
        })?;
    let mut paths = Vec::with_capacity(datasets.len());
    for (i, input) in datasets.iter().enumerate() {
        let dataset = Dataset::open(input)
            .with_context(|| format!("could not open dataset {}", input.display()))?;
        let name = input
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("input-{i}"));
        let mut path = dir.path().join(&name);
        if paths.contains(&path) {
            path = dir.path().join(format!("{i}-{name}"));
        }
        let mut writer = DatasetWriter::create(&path, WriterOptions::default())?;
        for record in dataset.records() {
            let record = record.with_context(|| format!("reading {}", input.display()))?;
            if shard.contains_id(&record.id) {
                writer.push(&record)?;
            }
        }
        writer.finish(ManifestFields {
            stage: format!("shard {shard}"),
            parents: vec![input.display().to_string()],
            ..ManifestFields::default()
        })?;
        paths.push(path);
    }
    Ok(ShardInputs {
        paths,
        _dir: Some(dir),
    })
}
