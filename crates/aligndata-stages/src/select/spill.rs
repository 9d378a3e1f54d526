//! Embeddings of a large selection, kept on disk instead of in memory.
//!
//! `select` embeds every eligible record once. Up to a threshold the rows stay in a `Vec`; past it
//! they go to an anonymous temporary file beside the output (deleted when dropped, even on a
//! crash: it has no name), so memory does not grow with the input: 1M rows of 1024-d would be
//! 4 GB. Reading back is either a block of consecutive rows (the outlier scores stream the whole
//! file once) or a set of rows by index (a cell's sampled candidates), both positioned reads on
//! one shared file handle, safe from many threads at once.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};

/// Rows written so far: in memory until `spill_after` rows, then on disk.
pub struct SpillWriter {
    dim: usize,
    spill_after: usize,
    memory: Vec<f32>,
    file: Option<BufWriter<File>>,
    rows: usize,
    dir: std::path::PathBuf,
}

/// Where the rows ended up.
pub enum Stored {
    /// Few enough to keep: row-major `rows × dim`.
    Memory(Vec<f32>),
    /// On disk.
    Spilled(Spill),
}

impl SpillWriter {
    /// Rows of `dim` values; past `spill_after` rows they move to a temporary file in `dir`.
    pub fn new(dim: usize, spill_after: usize, dir: &Path) -> Self {
        SpillWriter {
            dim,
            spill_after,
            memory: Vec::new(),
            file: None,
            rows: 0,
            dir: dir.to_path_buf(),
        }
    }

    /// Appends one row.
    pub fn push(&mut self, row: &[f32]) -> Result<()> {
        if row.len() != self.dim {
            bail!(
                "the embedder returned a row of length {} (expected {})",
                row.len(),
                self.dim
            );
        }
        if self.file.is_none() && self.rows >= self.spill_after {
            std::fs::create_dir_all(&self.dir)
                .with_context(|| format!("creating {}", self.dir.display()))?;
            let file = tempfile::tempfile_in(&self.dir).with_context(|| {
                format!(
                    "creating a temporary embeddings file in {}",
                    self.dir.display()
                )
            })?;
            let mut file = BufWriter::with_capacity(1 << 20, file);
            write_f32(&mut file, &self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(f) => write_f32(f, row)?,
            None => self.memory.extend_from_slice(row),
        }
        self.rows += 1;
        Ok(())
    }

    /// Rows pushed.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True before the first row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Done writing.
    pub fn finish(self) -> Result<Stored> {
        match self.file {
            None => Ok(Stored::Memory(self.memory)),
            Some(f) => {
                let file = f
                    .into_inner()
                    .map_err(|e| e.into_error())
                    .context("writing the temporary embeddings file")?;
                Ok(Stored::Spilled(Spill {
                    file,
                    dim: self.dim,
                    rows: self.rows,
                }))
            }
        }
    }
}

fn write_f32(out: &mut impl Write, values: &[f32]) -> Result<()> {
    let mut bytes = Vec::with_capacity(values.len() * 4);
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    out.write_all(&bytes)
        .context("writing the temporary embeddings file (is the disk full?)")
}

/// Embeddings on disk: `rows × dim` little-endian f32, row-major.
pub struct Spill {
    file: File,
    dim: usize,
    rows: usize,
}

impl Spill {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Row width.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Rows `start .. start + count`.
    pub fn read_block(&self, start: usize, count: usize) -> Result<Vec<f32>> {
        if start + count > self.rows {
            bail!(
                "rows {start}..{} asked of {} embeddings",
                start + count,
                self.rows
            );
        }
        let mut bytes = vec![0u8; count * self.dim * 4];
        read_at(&self.file, &mut bytes, (start * self.dim * 4) as u64)?;
        Ok(to_f32(&bytes))
    }

    /// The rows `idx`, in that order, contiguous.
    pub fn fetch(&self, idx: &[u32]) -> Result<Vec<f32>> {
        let row_bytes = self.dim * 4;
        let mut bytes = vec![0u8; idx.len() * row_bytes];
        for (slot, &i) in bytes.chunks_exact_mut(row_bytes.max(1)).zip(idx) {
            if i as usize >= self.rows {
                bail!("row {i} asked of {} embeddings", self.rows);
            }
            read_at(&self.file, slot, i as u64 * row_bytes as u64)?;
        }
        Ok(to_f32(&bytes))
    }
}

fn to_f32(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, offset)
        .context("reading the temporary embeddings file")
}

#[cfg(windows)]
fn read_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> Result<()> {
    use std::os::windows::fs::FileExt;
    while !buf.is_empty() {
        let n = file
            .seek_read(buf, offset)
            .context("reading the temporary embeddings file")?;
        if n == 0 {
            bail!("the temporary embeddings file is shorter than expected");
        }
        buf = &mut buf[n..];
        offset += n as u64;
    }
    Ok(())
}
