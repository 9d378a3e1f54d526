//! Record files: write and stream back [`Record`]s as JSONL, JSONL + zstd or Parquet.

use std::borrow::Borrow;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use aligndata_core::Record;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::parquet_io::{ParquetRecords, ParquetSink};
use crate::{DatasetError, Format};

/// What was written to one record file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Records written.
    pub records: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the file's bytes, as 64 lowercase hex digits.
    pub sha256: String,
}

/// Writes records to one file, one at a time, in any [`Format`].
///
/// Nothing is guaranteed on disk until [`RecordWriter::finish`], which flushes and fsyncs.
pub struct RecordWriter {
    path: PathBuf,
    sink: Sink,
    n_records: u64,
    line: Vec<u8>,
}

/// Streams records back from a file written by [`RecordWriter`] (or any JSONL of records).
///
/// Memory stays bounded: JSONL is read in blocks of a few MB and parsed on all cores; Parquet is
/// read a batch of rows at a time. A bad line is one `Err` item; reading goes on after it.
pub struct RecordReader {
    source: ReaderSource,
}

enum Sink {
    Jsonl(BufWriter<HashingFile>),
    JsonlZst(BufWriter<zstd::stream::write::Encoder<'static, HashingFile>>),
    Parquet(Box<ParquetSink>),
}

enum ReaderSource {
    Jsonl(JsonlRecords),
    Parquet(Box<ParquetRecords>),
}

/// Write buffer for JSONL: big enough that the kernel sees few, large writes.
const WRITE_BUFFER: usize = 1 << 20;
/// JSONL is read and parsed in blocks of about this many bytes.
const READ_BLOCK: usize = 4 << 20;
/// Below this many lines in a block, parsing in parallel costs more than it saves.
const PARALLEL_MIN_LINES: usize = 64;

/// Writes all `records` to `path` in `format` and fsyncs the file.
///
/// The file is written in place; use a [`DatasetWriter`](crate::DatasetWriter) for an atomic
/// dataset directory.
pub fn write_records<I>(path: &Path, format: Format, records: I) -> Result<FileSummary, DatasetError>
where
    I: IntoIterator,
    I::Item: Borrow<Record>,
{
    let mut writer = RecordWriter::create(path, format)?;
    for record in records {
        writer.write(record.borrow())?;
    }
    writer.finish()
}

/// Opens a record file for streaming, with the format taken from its extension.
pub fn read_records(path: &Path) -> Result<RecordReader, DatasetError> {
    let format = Format::from_path(path)?;
    RecordReader::open(path, format)
}

impl RecordWriter {
    /// Creates (or truncates) `path` and prepares to write `format`.
    pub fn create(path: &Path, format: Format) -> Result<RecordWriter, DatasetError> {
        let file = File::create(path).map_err(|e| DatasetError::io("create", path, e))?;
        let file = HashingFile { file, hasher: Sha256::new(), bytes: 0 };
        let sink = match format {
            Format::Jsonl => Sink::Jsonl(BufWriter::with_capacity(WRITE_BUFFER, file)),
            Format::JsonlZst => {
                let encoder = zstd::stream::write::Encoder::new(file, 3)
                    .map_err(|e| DatasetError::io("start zstd compression of", path, e))?;
                Sink::JsonlZst(BufWriter::with_capacity(WRITE_BUFFER, encoder))
            }
            Format::Parquet => Sink::Parquet(Box::new(ParquetSink::new(path, file)?)),
        };
        Ok(RecordWriter { path: path.to_path_buf(), sink, n_records: 0, line: Vec::with_capacity(4096) })
    }

    /// Appends one record.
    pub fn write(&mut self, record: &Record) -> Result<(), DatasetError> {
        match &mut self.sink {
            Sink::Jsonl(out) => write_json_line(&self.path, &mut self.line, out, record)?,
            Sink::JsonlZst(out) => write_json_line(&self.path, &mut self.line, out, record)?,
            Sink::Parquet(sink) => sink.push(&self.path, record)?,
        }
        self.n_records += 1;
        Ok(())
    }

    /// Records written so far.
    pub fn n_records(&self) -> u64 {
        self.n_records
    }

    /// Flushes everything, fsyncs the file and says what was written.
    pub fn finish(self) -> Result<FileSummary, DatasetError> {
        let path = self.path;
        let flush_err = |e: io::Error| DatasetError::io("write", &path, e);
        let hashing = match self.sink {
            Sink::Jsonl(out) => out.into_inner().map_err(|e| flush_err(e.into_error()))?,
            Sink::JsonlZst(out) => {
                let encoder = out.into_inner().map_err(|e| flush_err(e.into_error()))?;
                encoder.finish().map_err(flush_err)?
            }
            Sink::Parquet(sink) => sink.finish(&path)?,
        };
        let HashingFile { mut file, hasher, bytes } = hashing;
        file.flush().map_err(flush_err)?;
        file.sync_all().map_err(|e| DatasetError::io("fsync", &path, e))?;
        Ok(FileSummary { records: self.n_records, bytes, sha256: hex::encode(hasher.finalize()) })
    }
}

impl RecordReader {
    /// Opens `path` as a record file of the given format.
    pub fn open(path: &Path, format: Format) -> Result<RecordReader, DatasetError> {
        let file = File::open(path).map_err(|e| DatasetError::io("open", path, e))?;
        let source = match format {
            Format::Jsonl => ReaderSource::Jsonl(JsonlRecords::new(path, Box::new(file))),
            Format::JsonlZst => {
                let decoder = zstd::stream::read::Decoder::new(file)
                    .map_err(|e| DatasetError::io("start zstd decompression of", path, e))?;
                ReaderSource::Jsonl(JsonlRecords::new(path, Box::new(decoder)))
            }
            Format::Parquet => ReaderSource::Parquet(Box::new(ParquetRecords::open(path, file)?)),
        };
        Ok(RecordReader { source })
    }
}

impl Iterator for RecordReader {
    type Item = Result<Record, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.source {
            ReaderSource::Jsonl(r) => r.next(),
            ReaderSource::Parquet(r) => r.next(),
        }
    }
}

fn write_json_line<W: Write>(
    path: &Path,
    line: &mut Vec<u8>,
    out: &mut W,
    record: &Record,
) -> Result<(), DatasetError> {
    line.clear();
    if let Err(source) = serde_json::to_writer(&mut *line, record) {
        return Err(DatasetError::SerializeRecord { path: path.to_path_buf(), id: record.id.clone(), source });
    }
    line.push(b'\n');
    out.write_all(line).map_err(|e| DatasetError::io("write", path, e))
}

/// A file that counts and hashes the bytes written through it.
pub(crate) struct HashingFile {
    file: File,
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// JSONL records, read a block at a time and parsed in parallel.
struct JsonlRecords {
    path: PathBuf,
    reader: Box<dyn Read + Send>,
    /// Bytes read but not yet parsed: always starts at the beginning of a line.
    buf: Vec<u8>,
    /// 1-based line number of the first line in `buf`.
    next_line: u64,
    ready: std::vec::IntoIter<Result<Record, DatasetError>>,
    done: bool,
}

impl JsonlRecords {
    fn new(path: &Path, reader: Box<dyn Read + Send>) -> JsonlRecords {
        JsonlRecords {
            path: path.to_path_buf(),
            reader,
            buf: Vec::new(),
            next_line: 1,
            ready: Vec::new().into_iter(),
            done: false,
        }
    }

    /// Reads the next block of whole lines and parses it into `ready`.
    fn fill(&mut self) -> Result<(), DatasetError> {
        let mut eof = false;
        let end = loop {
            let before = self.buf.len();
            let n = (&mut self.reader)
                .take(READ_BLOCK as u64)
                .read_to_end(&mut self.buf)
                .map_err(|e| DatasetError::io("read", &self.path, e))?;
            if n == 0 {
                eof = true;
                break self.buf.len();
            }
            // Only the new bytes can hold the last newline; a long line keeps reading.
            if let Some(pos) = self.buf[before..].iter().rposition(|&b| b == b'\n') {
                break before + pos + 1;
            }
        };
        let block = &self.buf[..end];
        let mut lines: Vec<(u64, &[u8])> = Vec::new();
        let mut line_no = self.next_line;
        for line in block.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                lines.push((line_no, line));
            }
            line_no += 1;
        }
        // `split` yields one empty piece after a final newline: it is not a line.
        if block.last() == Some(&b'\n') {
            line_no -= 1;
        }
        let path = &self.path;
        let parse = |&(line, bytes): &(u64, &[u8])| {
            serde_json::from_slice::<Record>(bytes)
                .map_err(|source| DatasetError::BadRecord { path: path.clone(), line, source })
        };
        let parsed: Vec<_> = if lines.len() < PARALLEL_MIN_LINES {
            lines.iter().map(parse).collect()
        } else {
            lines.par_iter().map(parse).collect()
        };
        self.ready = parsed.into_iter();
        self.next_line = line_no;
        self.buf.drain(..end);
        self.done = eof;
        Ok(())
    }
}

impl Iterator for JsonlRecords {
    type Item = Result<Record, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.next() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
    }
}
