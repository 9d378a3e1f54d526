//! Raw input for ingest: text rows from JSONL, CSV, TSV or Parquet files.
//!
//! Per-row problems come back as [`BadRow`] and reading goes on; only problems with the whole
//! file (missing, unreadable, no such column) are a [`DatasetError`].

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use serde_json::Value;

use crate::{DatasetError, InputFormat};

/// How to read one raw input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputSpec {
    /// The file format; `None` takes it from the file name.
    pub format: Option<InputFormat>,
    /// Where the text is: for JSONL a field path with dots (`post.body`; a key that itself holds
    /// dots is found too), for CSV, TSV and Parquet a column name.
    pub text_field: String,
    /// Where the source's own id is, named like `text_field`. Strings and numbers are taken;
    /// a row without one gets `None`.
    pub id_field: Option<String>,
    /// Longest line (JSONL), record (CSV, TSV) or text (Parquet) accepted, in bytes.
    pub max_line_bytes: usize,
    /// CSV and TSV: whether the first row names the columns. Without one, columns are named by
    /// their 1-based position: `--text-field 1`.
    pub has_header: bool,
}

/// One row of raw text, ready to become a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRow {
    /// The text, as found (not trimmed).
    pub text: String,
    /// The row's id in its source, if the spec names an id field and the row has one.
    pub original_id: Option<String>,
    /// The input file, as given.
    pub file: String,
    /// 1-based line where the row starts (JSONL, CSV, TSV) or 1-based row (Parquet).
    pub line: u64,
}

/// A row that could not be read, with the reason; it belongs in the quarantine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRow {
    /// The input file, as given.
    pub file: String,
    /// 1-based line where the row starts (or 1-based Parquet row).
    pub line: u64,
    /// What is wrong, naming the field where one is involved.
    pub reason: String,
    /// The row as read: lossily decoded, cut to about [`RAW_EXCERPT_BYTES`].
    pub raw: String,
}

/// One item of [`read_input`].
pub type InputRow = Result<RawRow, BadRow>;

/// The rows of one raw input file; see [`read_input`].
pub struct InputRows {
    source: InputSource,
}

/// How much of a bad row is kept in [`BadRow::raw`].
pub const RAW_EXCERPT_BYTES: usize = 2048;

enum InputSource {
    Jsonl(JsonlInput),
    Csv(Box<CsvInput>),
    Parquet(Box<ParquetInput>),
}

impl Default for InputSpec {
    fn default() -> Self {
        InputSpec {
            format: None,
            text_field: "text".into(),
            id_field: None,
            max_line_bytes: 1 << 20,
            has_header: true,
        }
    }
}

impl std::fmt::Display for BadRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Opens a raw input file and streams its rows.
///
/// Memory stays bounded whatever the file size: JSONL is read line by line and a line over
/// `max_line_bytes` is skipped without being held; CSV and TSV are read record by record
/// (a single record is held whole before its size is checked); Parquet a batch at a time.
pub fn read_input(path: &Path, spec: &InputSpec) -> Result<InputRows, DatasetError> {
    let format = match spec.format {
        Some(format) => format,
        None => InputFormat::from_path(path)?,
    };
    if path.is_dir() {
        return Err(DatasetError::io(
            "read",
            path,
            io::Error::other("is a directory, not a file"),
        ));
    }
    let file = File::open(path).map_err(|e| DatasetError::io("open", path, e))?;
    let name = path.display().to_string();
    let source = match format {
        InputFormat::Jsonl => InputSource::Jsonl(JsonlInput::new(
            name,
            Box::new(BufReader::with_capacity(1 << 18, file)),
            spec,
        )),
        InputFormat::JsonlZst => {
            let decoder = zstd::stream::read::Decoder::new(file)
                .map_err(|e| DatasetError::io("start zstd decompression of", path, e))?;
            InputSource::Jsonl(JsonlInput::new(
                name,
                Box::new(BufReader::with_capacity(1 << 18, decoder)),
                spec,
            ))
        }
        InputFormat::Csv => {
            InputSource::Csv(Box::new(CsvInput::open(path, name, file, b',', spec)?))
        }
        InputFormat::Tsv => {
            InputSource::Csv(Box::new(CsvInput::open(path, name, file, b'\t', spec)?))
        }
        InputFormat::Parquet => {
            InputSource::Parquet(Box::new(ParquetInput::open(path, name, file, spec)?))
        }
    };
    Ok(InputRows { source })
}

impl Iterator for InputRows {
    type Item = InputRow;

    fn next(&mut self) -> Option<InputRow> {
        match &mut self.source {
            InputSource::Jsonl(r) => r.next(),
            InputSource::Csv(r) => r.next(),
            InputSource::Parquet(r) => r.next(),
        }
    }
}

/// The start of `bytes` as text: at most [`RAW_EXCERPT_BYTES`], invalid UTF-8 replaced.
fn raw_excerpt(bytes: &[u8]) -> String {
    if bytes.len() <= RAW_EXCERPT_BYTES {
        return String::from_utf8_lossy(bytes).into_owned();
    }
    let mut cut = RAW_EXCERPT_BYTES;
    // Do not split a UTF-8 sequence: back off to the start of a character.
    while cut > RAW_EXCERPT_BYTES - 4 && (bytes[cut] & 0b1100_0000) == 0b1000_0000 {
        cut -= 1;
    }
    let mut text = String::from_utf8_lossy(&bytes[..cut]).into_owned();
    text.push('…');
    text
}

fn check_text(text: &str, field: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(format!("text field `{field}` is empty or only whitespace"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// JSONL

struct JsonlInput {
    file: String,
    reader: Box<dyn BufRead + Send>,
    text_field: String,
    id_field: Option<String>,
    max_line_bytes: usize,
    line_no: u64,
    buf: Vec<u8>,
    done: bool,
}

enum LineRead {
    Line,
    TooLong(u64),
    Eof,
}

impl JsonlInput {
    fn new(file: String, reader: Box<dyn BufRead + Send>, spec: &InputSpec) -> JsonlInput {
        JsonlInput {
            file,
            reader,
            text_field: spec.text_field.clone(),
            id_field: spec.id_field.clone(),
            max_line_bytes: spec.max_line_bytes,
            line_no: 0,
            buf: Vec::new(),
            done: false,
        }
    }

    /// Reads the next line into `buf` (without its newline), holding at most `max_line_bytes`:
    /// a longer line is skipped to its end with only its start kept.
    fn read_line(&mut self) -> io::Result<LineRead> {
        self.buf.clear();
        let mut total: u64 = 0;
        let mut too_long = false;
        let mut saw_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if !saw_any {
                    return Ok(LineRead::Eof);
                }
                break;
            }
            saw_any = true;
            let (chunk, consumed, found) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            total += chunk.len() as u64;
            if !too_long {
                if self.buf.len() + chunk.len() > self.max_line_bytes {
                    too_long = true;
                    let keep = RAW_EXCERPT_BYTES
                        .saturating_sub(self.buf.len())
                        .min(chunk.len());
                    self.buf.extend_from_slice(&chunk[..keep]);
                    self.buf.truncate(RAW_EXCERPT_BYTES + 4);
                } else {
                    self.buf.extend_from_slice(chunk);
                }
            }
            self.reader.consume(consumed);
            if found {
                break;
            }
        }
        self.line_no += 1;
        if too_long {
            return Ok(LineRead::TooLong(total));
        }
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.line_no == 1 && self.buf.starts_with(b"\xEF\xBB\xBF") {
            self.buf.drain(..3);
        }
        Ok(LineRead::Line)
    }

    fn bad(&self, reason: String) -> BadRow {
        BadRow {
            file: self.file.clone(),
            line: self.line_no,
            reason,
            raw: raw_excerpt(&self.buf),
        }
    }

    fn parse_line(&self) -> InputRow {
        let text = match std::str::from_utf8(&self.buf) {
            Ok(text) => text,
            Err(e) => {
                return Err(self.bad(format!(
                    "invalid UTF-8 at byte {} of the line",
                    e.valid_up_to()
                )));
            }
        };
        let value: Value = match serde_json::from_str(text) {
            Ok(value) => value,
            Err(e) => return Err(self.bad(format!("not valid JSON: {e}"))),
        };
        if !value.is_object() {
            return Err(self.bad(format!(
                "the line is a JSON {}, not an object",
                json_kind(&value)
            )));
        }
        let text = match lookup(&value, &self.text_field) {
            Ok(Value::String(text)) => text.clone(),
            Ok(other) => {
                return Err(self.bad(format!(
                    "field `{}` is a {}, not a string",
                    self.text_field,
                    json_kind(other)
                )));
            }
            Err(missing) => return Err(self.bad(missing)),
        };
        check_text(&text, &self.text_field).map_err(|reason| self.bad(reason))?;
        let original_id = match &self.id_field {
            None => None,
            Some(field) => match lookup(&value, field) {
                Ok(Value::String(id)) => Some(id.clone()),
                Ok(Value::Number(id)) => Some(id.to_string()),
                _ => None,
            },
        };
        Ok(RawRow {
            text,
            original_id,
            file: self.file.clone(),
            line: self.line_no,
        })
    }
}

impl Iterator for JsonlInput {
    type Item = InputRow;

    fn next(&mut self) -> Option<InputRow> {
        while !self.done {
            match self.read_line() {
                Ok(LineRead::Eof) => self.done = true,
                Ok(LineRead::TooLong(bytes)) => {
                    return Some(Err(self.bad(format!(
                        "line is {bytes} bytes, over the limit of {} (max_line_bytes)",
                        self.max_line_bytes
                    ))));
                }
                Ok(LineRead::Line) => {
                    if self.buf.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    return Some(self.parse_line());
                }
                Err(e) => {
                    // The stream cannot be trusted past a read error (e.g. corrupt zstd): stop.
                    self.done = true;
                    self.line_no += 1;
                    self.buf.clear();
                    return Some(Err(
                        self.bad(format!("read error, rest of file skipped: {e}"))
                    ));
                }
            }
        }
        None
    }
}

/// Finds a dotted field path in a JSON object; the error says which part is missing.
fn lookup<'a>(value: &'a Value, path: &str) -> Result<&'a Value, String> {
    if let Some(found) = value.get(path) {
        return Ok(found);
    }
    let mut current = value;
    let mut walked = String::new();
    for part in path.split('.') {
        let next = match current {
            Value::Object(map) => map.get(part),
            _ => None,
        };
        let Some(next) = next else {
            let under = if walked.is_empty() {
                String::new()
            } else {
                format!(" under `{walked}`")
            };
            let keys = match current {
                Value::Object(map) => {
                    let keys: Vec<&str> = map.keys().take(20).map(String::as_str).collect();
                    format!("; keys there: {}", keys.join(", "))
                }
                other => format!("; `{walked}` is a {}", json_kind(other)),
            };
            return Err(format!(
                "field `{path}` is missing: no `{part}`{under}{keys}"
            ));
        };
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        current = next;
    }
    Ok(current)
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

// ---------------------------------------------------------------------------------------------
// CSV and TSV

struct CsvInput {
    file: String,
    reader: csv::Reader<BufReader<File>>,
    text_field: String,
    text_col: usize,
    id_col: Option<usize>,
    n_cols: usize,
    delimiter: u8,
    max_line_bytes: usize,
    record: csv::ByteRecord,
    done: bool,
}

impl CsvInput {
    fn open(
        path: &Path,
        name: String,
        file: File,
        delimiter: u8,
        spec: &InputSpec,
    ) -> Result<CsvInput, DatasetError> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .has_headers(spec.has_header)
            .from_reader(BufReader::with_capacity(1 << 18, file));
        let headers = reader
            .byte_headers()
            .map_err(|source| DatasetError::CsvHeader {
                path: path.to_path_buf(),
                source,
            })?;
        // Without a header row, columns are named by their 1-based position ("1", "2", …); the
        // csv reader still yields the first row as a record.
        let names: Vec<String> = if !spec.has_header {
            (1..=headers.len()).map(|i| i.to_string()).collect()
        } else {
            headers
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let h = if i == 0 {
                        h.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(h)
                    } else {
                        h
                    };
                    String::from_utf8_lossy(h).trim().to_string()
                })
                .collect()
        };
        let find = |column: &str| {
            names
                .iter()
                .position(|n| n == column)
                .ok_or_else(|| DatasetError::MissingColumn {
                    path: path.to_path_buf(),
                    column: column.to_string(),
                    available: names
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", "),
                })
        };
        let text_col = find(&spec.text_field)?;
        let id_col = match &spec.id_field {
            Some(field) => Some(find(field)?),
            None => None,
        };
        Ok(CsvInput {
            file: name,
            reader,
            text_field: spec.text_field.clone(),
            text_col,
            id_col,
            n_cols: names.len(),
            delimiter,
            max_line_bytes: spec.max_line_bytes,
            record: csv::ByteRecord::new(),
            done: false,
        })
    }

    fn raw(&self) -> String {
        let mut joined = Vec::new();
        for (i, field) in self.record.iter().enumerate() {
            if i > 0 {
                joined.push(self.delimiter);
            }
            joined.extend_from_slice(field);
            if joined.len() > RAW_EXCERPT_BYTES {
                break;
            }
        }
        raw_excerpt(&joined)
    }

    fn row(&self, line: u64) -> InputRow {
        let bad = |reason: String| BadRow {
            file: self.file.clone(),
            line,
            reason,
            raw: self.raw(),
        };
        let size = self.record.as_slice().len();
        if size > self.max_line_bytes {
            return Err(bad(format!(
                "row is {size} bytes, over the limit of {} (max_line_bytes)",
                self.max_line_bytes
            )));
        }
        if self.record.len() != self.n_cols {
            return Err(bad(format!(
                "row has {} fields but the header has {}",
                self.record.len(),
                self.n_cols
            )));
        }
        let text_bytes = self.record.get(self.text_col).unwrap_or_default();
        let text = match std::str::from_utf8(text_bytes) {
            Ok(text) => text.to_string(),
            Err(e) => {
                return Err(bad(format!(
                    "invalid UTF-8 in column `{}` at byte {}",
                    self.text_field,
                    e.valid_up_to()
                )));
            }
        };
        check_text(&text, &self.text_field).map_err(bad)?;
        let original_id = self
            .id_col
            .and_then(|col| self.record.get(col))
            .map(|id| String::from_utf8_lossy(id).trim().to_string())
            .filter(|id| !id.is_empty());
        Ok(RawRow {
            text,
            original_id,
            file: self.file.clone(),
            line,
        })
    }
}

impl Iterator for CsvInput {
    type Item = InputRow;

    fn next(&mut self) -> Option<InputRow> {
        if self.done {
            return None;
        }
        let start_line = self.reader.position().line();
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self
                    .record
                    .position()
                    .map(|p| p.line())
                    .unwrap_or(start_line);
                Some(self.row(line))
            }
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(start_line);
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    self.done = true;
                }
                Some(Err(BadRow {
                    file: self.file.clone(),
                    line,
                    reason: format!("CSV error: {e}"),
                    raw: String::new(),
                }))
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parquet

struct ParquetInput {
    file: String,
    reader: ParquetRecordBatchReader,
    text_field: String,
    id_field: Option<String>,
    max_line_bytes: usize,
    batch: Option<(ArrayRef, Option<ArrayRef>)>,
    batch_idx: usize,
    next_row: u64,
    done: bool,
}

impl ParquetInput {
    fn open(
        path: &Path,
        name: String,
        file: File,
        spec: &InputSpec,
    ) -> Result<ParquetInput, DatasetError> {
        let parquet_err = |source| DatasetError::Parquet {
            path: path.to_path_buf(),
            source,
        };
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(parquet_err)?;
        let schema = builder.schema().clone();
        let names = || {
            schema
                .fields()
                .iter()
                .map(|f| format!("{:?}", f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let find = |column: &str| {
            schema
                .index_of(column)
                .map_err(|_| DatasetError::MissingColumn {
                    path: path.to_path_buf(),
                    column: column.to_string(),
                    available: names(),
                })
        };
        let text_idx = find(&spec.text_field)?;
        let text_type = schema.field(text_idx).data_type();
        if !matches!(
            text_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        ) {
            return Err(DatasetError::ColumnNotText {
                path: path.to_path_buf(),
                column: spec.text_field.clone(),
                data_type: text_type.to_string(),
            });
        }
        let mut roots = vec![text_idx];
        if let Some(field) = &spec.id_field {
            roots.push(find(field)?);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
        let reader = builder
            .with_projection(mask)
            .with_batch_size(8192)
            .build()
            .map_err(parquet_err)?;
        Ok(ParquetInput {
            file: name,
            reader,
            text_field: spec.text_field.clone(),
            id_field: spec.id_field.clone(),
            max_line_bytes: spec.max_line_bytes,
            batch: None,
            batch_idx: 0,
            next_row: 1,
            done: false,
        })
    }

    fn take_batch(&mut self, batch: &RecordBatch) -> Result<(), String> {
        let to_utf8 = |name: &str| -> Result<ArrayRef, String> {
            let column = batch
                .column_by_name(name)
                .ok_or_else(|| format!("column `{name}` vanished"))?;
            arrow::compute::cast(column, &DataType::Utf8)
                .map_err(|e| format!("column `{name}`: {e}"))
        };
        let text = to_utf8(&self.text_field)?;
        let id = match &self.id_field {
            Some(field) => Some(to_utf8(field)?),
            None => None,
        };
        self.batch = Some((text, id));
        self.batch_idx = 0;
        Ok(())
    }
}

impl Iterator for ParquetInput {
    type Item = InputRow;

    fn next(&mut self) -> Option<InputRow> {
        loop {
            if let Some((text, id)) = &self.batch {
                if self.batch_idx < text.len() {
                    let idx = self.batch_idx;
                    self.batch_idx += 1;
                    let line = self.next_row;
                    self.next_row += 1;
                    let bad = |reason: String, raw: &str| BadRow {
                        file: self.file.clone(),
                        line,
                        reason,
                        raw: raw_excerpt(raw.as_bytes()),
                    };
                    let texts = text.as_string::<i32>();
                    if texts.is_null(idx) {
                        return Some(Err(bad(
                            format!("text field `{}` is null", self.text_field),
                            "",
                        )));
                    }
                    let value = texts.value(idx);
                    if value.len() > self.max_line_bytes {
                        let reason = format!(
                            "text is {} bytes, over the limit of {} (max_line_bytes)",
                            value.len(),
                            self.max_line_bytes
                        );
                        return Some(Err(bad(reason, value)));
                    }
                    if let Err(reason) = check_text(value, &self.text_field) {
                        return Some(Err(bad(reason, value)));
                    }
                    let original_id = id.as_ref().and_then(|ids| {
                        let ids = ids.as_string::<i32>();
                        (!ids.is_null(idx)).then(|| ids.value(idx).to_string())
                    });
                    return Some(Ok(RawRow {
                        text: value.to_string(),
                        original_id,
                        file: self.file.clone(),
                        line,
                    }));
                }
                self.batch = None;
            }
            if self.done {
                return None;
            }
            match self.reader.next() {
                None => self.done = true,
                Some(Ok(batch)) => {
                    if let Err(reason) = self.take_batch(&batch) {
                        self.done = true;
                        return Some(Err(BadRow {
                            file: self.file.clone(),
                            line: self.next_row,
                            reason,
                            raw: String::new(),
                        }));
                    }
                }
                Some(Err(e)) => {
                    self.done = true;
                    let reason = format!("cannot read Parquet rows, rest of file skipped: {e}");
                    return Some(Err(BadRow {
                        file: self.file.clone(),
                        line: self.next_row,
                        reason,
                        raw: String::new(),
                    }));
                }
            }
        }
    }
}
