//! Dataset directories: shards plus `manifest.json`, written atomically.

use std::fs::{self, File};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use aligndata_core::Record;
use serde::{Deserialize, Serialize};

use crate::atomic::{fsync_dir, parent_dir};
use crate::manifest::{Counts, Manifest, ManifestFields, SCHEMA_VERSION, ShardInfo, config_hash};
use crate::records::{RecordReader, RecordWriter};
use crate::{BadRow, DatasetError, Format};

/// File name of the manifest inside a dataset directory.
pub const MANIFEST_FILE: &str = "manifest.json";
/// File name of the quarantine inside a dataset directory.
pub const QUARANTINE_FILE: &str = "quarantine.jsonl";

/// How a [`DatasetWriter`] lays out its shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Format of every shard.
    pub format: Format,
    /// Records per shard; the last shard holds the rest.
    pub shard_records: usize,
}

/// A raw input row that could not become a record, kept in `quarantine.jsonl` with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The input file.
    pub file: String,
    /// 1-based line (or row) in it.
    pub line: u64,
    /// Why the row was set aside.
    pub reason: String,
    /// The row as read, lossily decoded and truncated to about 2 KB.
    pub raw: String,
}

/// Writes a dataset directory: shards, `quarantine.jsonl` and `manifest.json`.
///
/// Everything goes to a temp sibling `.<name>.partial-<pid>` first. [`DatasetWriter::finish`]
/// fsyncs it and then swaps it into place:
///
/// 1. rename the old `<name>` (if any) to `.<name>.old-<pid>`;
/// 2. rename `.<name>.partial-<pid>` to `<name>`;
/// 3. fsync the parent directory and delete `.<name>.old-<pid>`.
///
/// The one crash window lies between steps 1 and 2: `<name>` is then missing while the old data
/// sits complete in `.<name>.old-<pid>` and the new in `.<name>.partial-<pid>`; renaming either
/// back to `<name>` recovers. A crash at any other moment leaves the old dataset or the new one.
///
/// Dropping the writer without calling `finish` deletes the temp directory and leaves `<name>`
/// untouched.
pub struct DatasetWriter {
    dir: PathBuf,
    tmp: PathBuf,
    options: WriterOptions,
    current: Option<RecordWriter>,
    shards: Vec<ShardInfo>,
    counts: Counts,
    quarantine: Option<BufWriter<File>>,
    finished: bool,
}

/// An opened dataset directory.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// The directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
}

/// Streams a dataset's records, shard after shard. See [`Dataset::records`].
pub struct DatasetRecords {
    dir: PathBuf,
    format: Format,
    shards: std::vec::IntoIter<ShardInfo>,
    current: Option<RecordReader>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            format: Format::Jsonl,
            shard_records: 100_000,
        }
    }
}

impl From<BadRow> for QuarantineEntry {
    fn from(row: BadRow) -> Self {
        QuarantineEntry {
            file: row.file,
            line: row.line,
            reason: row.reason,
            raw: row.raw,
        }
    }
}

impl DatasetWriter {
    /// Starts writing a dataset that will replace `dir` when finished.
    ///
    /// Fails early if `dir` exists and is neither a dataset nor empty: a stage never deletes
    /// a directory it did not write.
    pub fn create(dir: &Path, options: WriterOptions) -> Result<DatasetWriter, DatasetError> {
        check_replaceable(dir)?;
        let parent = parent_dir(dir);
        fs::create_dir_all(parent).map_err(|e| DatasetError::io("create directory", parent, e))?;
        let tmp = sibling(dir, "partial");
        if tmp.exists() {
            // Left by an earlier run that had our pid and crashed: nothing in it is finished.
            fs::remove_dir_all(&tmp)
                .map_err(|e| DatasetError::io("remove stale temp directory", &tmp, e))?;
        }
        fs::create_dir(&tmp).map_err(|e| DatasetError::io("create directory", &tmp, e))?;
        let options = WriterOptions {
            shard_records: options.shard_records.max(1),
            ..options
        };
        Ok(DatasetWriter {
            dir: dir.to_path_buf(),
            tmp,
            options,
            current: None,
            shards: Vec::new(),
            counts: Counts::default(),
            quarantine: None,
            finished: false,
        })
    }

    /// Appends one record.
    pub fn push(&mut self, record: &Record) -> Result<(), DatasetError> {
        let writer = match &mut self.current {
            Some(writer) => writer,
            None => self.current.insert(self.open_shard()?),
        };
        writer.write(record)?;
        self.counts.add(record);
        if writer.n_records() >= self.options.shard_records as u64 {
            self.close_shard()?;
        }
        Ok(())
    }

    /// Sets one raw row aside in `quarantine.jsonl`.
    pub fn quarantine(&mut self, entry: QuarantineEntry) -> Result<(), DatasetError> {
        let path = self.tmp.join(QUARANTINE_FILE);
        let out = match &mut self.quarantine {
            Some(out) => out,
            None => {
                let file = File::create(&path).map_err(|e| DatasetError::io("create", &path, e))?;
                self.quarantine
                    .insert(BufWriter::with_capacity(1 << 16, file))
            }
        };
        let mut line =
            serde_json::to_vec(&entry).map_err(|source| DatasetError::SerializeRecord {
                path: path.clone(),
                id: entry.file.clone(),
                source,
            })?;
        line.push(b'\n');
        out.write_all(&line)
            .map_err(|e| DatasetError::io("write", &path, e))?;
        self.counts.quarantined += 1;
        Ok(())
    }

    /// The counts so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// Closes the files, writes the manifest, fsyncs and swaps the new directory into place.
    pub fn finish(mut self, fields: ManifestFields) -> Result<Manifest, DatasetError> {
        self.close_shard()?;
        if self.shards.is_empty() {
            // An empty dataset still has one (empty) shard, so readers see its schema.
            let writer = self.open_shard()?;
            self.current = Some(writer);
            self.close_shard()?;
        }
        if let Some(out) = self.quarantine.take() {
            let path = self.tmp.join(QUARANTINE_FILE);
            let file = out
                .into_inner()
                .map_err(|e| DatasetError::io("write", &path, e.into_error()))?;
            file.sync_all()
                .map_err(|e| DatasetError::io("fsync", &path, e))?;
        }
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
            created_at: now_rfc3339(),
            stage: fields.stage,
            config_hash: config_hash(&fields.config),
            config: fields.config,
            parents: fields.parents,
            format: self.options.format,
            shards: std::mem::take(&mut self.shards),
            counts: self.counts.clone(),
            extra: fields.extra,
        };
        let manifest_path = self.tmp.join(MANIFEST_FILE);
        let mut bytes =
            serde_json::to_vec_pretty(&manifest).map_err(|source| DatasetError::BadManifest {
                path: manifest_path.clone(),
                source,
            })?;
        bytes.push(b'\n');
        let mut file = File::create(&manifest_path)
            .map_err(|e| DatasetError::io("create", &manifest_path, e))?;
        file.write_all(&bytes)
            .map_err(|e| DatasetError::io("write", &manifest_path, e))?;
        file.sync_all()
            .map_err(|e| DatasetError::io("fsync", &manifest_path, e))?;
        fsync_dir(&self.tmp)?;
        self.swap_into_place()?;
        Ok(manifest)
    }

    fn open_shard(&self) -> Result<RecordWriter, DatasetError> {
        let name = shard_name(self.shards.len(), self.options.format);
        RecordWriter::create(&self.tmp.join(name), self.options.format)
    }

    fn close_shard(&mut self) -> Result<(), DatasetError> {
        let Some(writer) = self.current.take() else {
            return Ok(());
        };
        let summary = writer.finish()?;
        self.shards.push(ShardInfo {
            file: shard_name(self.shards.len(), self.options.format),
            records: summary.records,
            bytes: summary.bytes,
            sha256: Some(summary.sha256),
        });
        Ok(())
    }

    fn swap_into_place(&mut self) -> Result<(), DatasetError> {
        let parent = parent_dir(&self.dir).to_path_buf();
        let rename = |from: &Path, to: &Path| {
            fs::rename(from, to).map_err(|e| DatasetError::io("rename directory", from, e))
        };
        if !self.dir.exists() {
            rename(&self.tmp, &self.dir)?;
            self.finished = true;
            return fsync_dir(&parent);
        }
        // Checked again: the directory may have changed since `create`.
        check_replaceable(&self.dir)?;
        let old = sibling(&self.dir, "old");
        if old.exists() {
            fs::remove_dir_all(&old)
                .map_err(|e| DatasetError::io("remove stale directory", &old, e))?;
        }
        rename(&self.dir, &old)?;
        if let Err(e) = rename(&self.tmp, &self.dir) {
            // Put the old dataset back; the new one stays in the temp dir, removed on drop.
            let _ = fs::rename(&old, &self.dir);
            return Err(e);
        }
        self.finished = true;
        fsync_dir(&parent)?;
        fs::remove_dir_all(&old)
            .map_err(|e| DatasetError::io("remove the replaced dataset", &old, e))
    }
}

impl Drop for DatasetWriter {
    fn drop(&mut self) {
        if !self.finished {
            // Unfinished output must not linger as a half dataset.
            let _ = fs::remove_dir_all(&self.tmp);
        }
    }
}

impl Dataset {
    /// Opens a dataset directory by reading its manifest.
    pub fn open(dir: &Path) -> Result<Dataset, DatasetError> {
        if !dir.exists() {
            return Err(DatasetError::NotFound {
                path: dir.to_path_buf(),
            });
        }
        let path = dir.join(MANIFEST_FILE);
        let bytes = match fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound
                    || e.kind() == std::io::ErrorKind::NotADirectory =>
            {
                return Err(DatasetError::NotADataset {
                    dir: dir.to_path_buf(),
                });
            }
            Err(e) => return Err(DatasetError::io("read", &path, e)),
        };
        let version = serde_json::from_slice::<ManifestVersion>(&bytes).map_err(|source| {
            DatasetError::BadManifest {
                path: path.clone(),
                source,
            }
        })?;
        if version.schema_version > SCHEMA_VERSION {
            return Err(DatasetError::UnsupportedSchema {
                path,
                found: version.schema_version,
                supported: SCHEMA_VERSION,
            });
        }
        let manifest = serde_json::from_slice::<Manifest>(&bytes).map_err(|source| {
            DatasetError::BadManifest {
                path: path.clone(),
                source,
            }
        })?;
        Ok(Dataset {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Streams every record, shard after shard in manifest order, in bounded memory.
    ///
    /// A shard that cannot be opened is one `Err` item; the next shard follows.
    pub fn records(&self) -> DatasetRecords {
        DatasetRecords {
            dir: self.dir.clone(),
            format: self.manifest.format,
            shards: self.manifest.shards.clone().into_iter(),
            current: None,
        }
    }

    /// Paths of the data files, in record order.
    pub fn shard_paths(&self) -> Vec<PathBuf> {
        self.manifest
            .shards
            .iter()
            .map(|s| self.dir.join(&s.file))
            .collect()
    }

    /// Reads `quarantine.jsonl` (empty when there is none).
    pub fn quarantine(&self) -> Result<Vec<QuarantineEntry>, DatasetError> {
        let path = self.dir.join(QUARANTINE_FILE);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(DatasetError::io("open", &path, e)),
        };
        let mut entries = Vec::new();
        for (idx, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| DatasetError::io("read", &path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            let entry = serde_json::from_str(&line).map_err(|source| DatasetError::BadRecord {
                path: path.clone(),
                line: idx as u64 + 1,
                source,
            })?;
            entries.push(entry);
        }
        Ok(entries)
    }
}

impl Iterator for DatasetRecords {
    type Item = Result<Record, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(reader) = &mut self.current {
                if let Some(item) = reader.next() {
                    return Some(item);
                }
                self.current = None;
            }
            let shard = self.shards.next()?;
            match RecordReader::open(&self.dir.join(&shard.file), self.format) {
                Ok(reader) => self.current = Some(reader),
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

#[derive(Deserialize)]
struct ManifestVersion {
    schema_version: u32,
}

fn shard_name(idx: usize, format: Format) -> String {
    format!("part-{idx:05}.{}", format.extension())
}

/// `.<name>.<what>-<pid>` beside `dir`.
fn sibling(dir: &Path, what: &str) -> PathBuf {
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    parent_dir(dir).join(format!(".{name}.{what}-{}", std::process::id()))
}

/// Ok when `dir` is absent, empty, or a dataset.
fn check_replaceable(dir: &Path) -> Result<(), DatasetError> {
    if !dir.exists() || dir.join(MANIFEST_FILE).is_file() {
        return Ok(());
    }
    let is_empty_dir = fs::read_dir(dir)
        .map(|mut entries| entries.next().is_none())
        .unwrap_or(false);
    if is_empty_dir {
        return Ok(());
    }
    Err(DatasetError::WouldClobber {
        dir: dir.to_path_buf(),
    })
}

fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let now = now.replace_nanosecond(0).unwrap_or(now);
    now.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| now.unix_timestamp().to_string())
}
