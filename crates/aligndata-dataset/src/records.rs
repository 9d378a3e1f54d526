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
pub fn write_records<I>(
    path: &Path,
    format: Format,
    records: I,
) -> Result<FileSummary, DatasetError>
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
        let file = HashingFile {
            file,
            hasher: Sha256::new(),
            bytes: 0,
        };
        let sink = match format {
            Format::Jsonl => Sink::Jsonl(BufWriter::with_capacity(WRITE_BUFFER, file)),
            Format::JsonlZst => {
                let encoder = zstd::stream::write::Encoder::new(file, 3)
                    .map_err(|e| DatasetError::io("start zstd compression of", path, e))?;
                Sink::JsonlZst(BufWriter::with_capacity(WRITE_BUFFER, encoder))
            }
            Format::Parquet => Sink::Parquet(Box::new(ParquetSink::new(path, file)?)),
        };
        Ok(RecordWriter {
            path: path.to_path_buf(),
            sink,
            n_records: 0,
            line: Vec::with_capacity(4096),
        })
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
        let HashingFile {
            mut file,
            hasher,
            bytes,
        } = hashing;
        file.flush().map_err(flush_err)?;
        file.sync_all()
            .map_err(|e| DatasetError::io("fsync", &path, e))?;
        Ok(FileSummary {
            records: self.n_records,
            bytes,
            sha256: hex::encode(hasher.finalize()),
        })
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
        return Err(DatasetError::SerializeRecord {
            path: path.to_path_buf(),
            id: record.id.clone(),
            source,
        });
    }
    line.push(b'\n');
    out.write_all(line)
        .map_err(|e| DatasetError::io("write", path, e))
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
///
/// A background thread reads and parses blocks ahead of the consumer (at most
/// [`BLOCKS_AHEAD`] blocks), so that parsing overlaps whatever the consumer does with the
/// records, e.g. writing them elsewhere. Dropping the reader stops the thread at its next block.
struct JsonlRecords {
    path: PathBuf,
    state: JsonlState,
    ready: std::vec::IntoIter<Result<Record, DatasetError>>,
}

enum JsonlState {
    NotStarted(Box<dyn Read + Send>),
    Running(std::sync::mpsc::Receiver<Vec<Result<Record, DatasetError>>>),
    Done,
}

/// Parsed blocks waiting for the consumer: bounds memory to a few blocks.
const BLOCKS_AHEAD: usize = 2;

impl JsonlRecords {
    fn new(path: &Path, reader: Box<dyn Read + Send>) -> JsonlRecords {
        JsonlRecords {
            path: path.to_path_buf(),
            state: JsonlState::NotStarted(reader),
            ready: Vec::new().into_iter(),
        }
    }
}

impl Iterator for JsonlRecords {
    type Item = Result<Record, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.ready.next() {
                return Some(item);
            }
            match std::mem::replace(&mut self.state, JsonlState::Done) {
                JsonlState::Done => return None,
                JsonlState::NotStarted(reader) => {
                    let (tx, rx) = std::sync::mpsc::sync_channel(BLOCKS_AHEAD);
                    let path = self.path.clone();
                    let spawned = std::thread::Builder::new()
                        .name("jsonl-reader".into())
                        .spawn(move || read_blocks(path, reader, tx));
                    match spawned {
                        Ok(_) => self.state = JsonlState::Running(rx),
                        Err(e) => {
                            return Some(Err(DatasetError::io(
                                "start a reader thread for",
                                &self.path,
                                e,
                            )));
                        }
                    }
                }
                JsonlState::Running(rx) => match rx.recv() {
                    Ok(block) => {
                        self.ready = block.into_iter();
                        self.state = JsonlState::Running(rx);
                    }
                    // The thread has finished (it sends any read error as the last block).
                    Err(_) => return None,
                },
            }
        }
    }
}

/// The reader thread: reads whole-line blocks, parses them, sends them in order.
fn read_blocks(
    path: PathBuf,
    mut reader: Box<dyn Read + Send>,
    tx: std::sync::mpsc::SyncSender<Vec<Result<Record, DatasetError>>>,
) {
    let mut buf: Vec<u8> = Vec::new();
    let mut next_line: u64 = 1;
    loop {
        let mut eof = false;
        let end = loop {
            let before = buf.len();
            let n = match (&mut reader).take(READ_BLOCK as u64).read_to_end(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send(vec![Err(DatasetError::io("read", &path, e))]);
                    return;
                }
            };
            if n == 0 {
                eof = true;
                break buf.len();
            }
            // Only the new bytes can hold the last newline; a long line keeps reading.
            if let Some(pos) = buf[before..].iter().rposition(|&b| b == b'\n') {
                break before + pos + 1;
            }
        };
        let (parsed, lines_seen) = parse_block(&path, &buf[..end], next_line);
        next_line += lines_seen;
        buf.drain(..end);
        if !parsed.is_empty() && tx.send(parsed).is_err() {
            return; // The consumer is gone.
        }
        if eof {
            return;
        }
    }
}

/// Parses a block of whole lines; returns the records and the number of lines it held.
fn parse_block(
    path: &Path,
    block: &[u8],
    first_line: u64,
) -> (Vec<Result<Record, DatasetError>>, u64) {
    let mut lines: Vec<(u64, &[u8])> = Vec::new();
    let mut line_no = first_line;
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
    let parse = |&(line, bytes): &(u64, &[u8])| {
        serde_json::from_slice::<Record>(bytes).map_err(|source| DatasetError::BadRecord {
            path: path.to_path_buf(),
            line,
            source,
        })
    };
    let parsed = if lines.len() < PARALLEL_MIN_LINES {
        lines.iter().map(parse).collect()
    } else {
        lines.par_iter().map(parse).collect()
    };
    (parsed, line_no - first_line)
}
