//! Parquet for records: the Arrow schema comes from the `Record` type itself.

use std::fs::File;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use aligndata_core::Record;
use arrow::datatypes::{DataType, Field, FieldRef, Schema};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use parquet::schema::types::ColumnPath;
use serde_arrow::ArrayBuilder;
use serde_arrow::schema::{SchemaLike, TracingOptions};

use crate::DatasetError;
use crate::records::HashingFile;

/// Rows per Parquet row group: large enough for good compression, small enough for bounded memory.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Rows converted to Arrow at a time, when writing and when reading.
const BATCH_ROWS: usize = 8 * 1024;

/// The Arrow fields of a [`Record`], top level: id, text, source, provenance, intended, labels,
/// scores, flags, responses.
///
/// Traced from the type, not from data, so an empty file still carries the whole schema.
/// `source` is a plain string column; `intended` is an Arrow map; the `Vec`s are lists of structs.
pub fn record_fields() -> Result<Vec<FieldRef>, String> {
    static FIELDS: OnceLock<Result<Vec<FieldRef>, String>> = OnceLock::new();
    FIELDS
        .get_or_init(|| {
            let options = TracingOptions::default()
                .map_as_struct(false)
                .enums_without_data_as_strings(true)
                .allow_null_fields(true);
            let mut fields =
                Vec::<FieldRef>::from_type::<Record>(options).map_err(|e| e.to_string())?;
            // Traced enums become dictionaries (pandas categoricals); a plain string reads
            // the same everywhere.
            for field in &mut fields {
                if field.name() == "source" {
                    *field = Arc::new(Field::new("source", DataType::LargeUtf8, false));
                }
            }
            Ok(fields)
        })
        .clone()
}

pub(crate) struct ParquetSink {
    writer: ArrowWriter<HashingFile>,
    builder: ArrayBuilder,
    pending: usize,
}

pub(crate) struct ParquetRecords {
    path: std::path::PathBuf,
    reader: ParquetRecordBatchReader,
    /// 1-based row number of the next batch's first row.
    next_row: u64,
    ready: std::vec::IntoIter<Record>,
    done: bool,
}

fn arrow_err(
    path: &Path,
    row: u64,
    e: impl std::error::Error + Send + Sync + 'static,
) -> DatasetError {
    DatasetError::Arrow {
        path: path.to_path_buf(),
        row,
        source: Box::new(e),
    }
}

fn schema_err(path: &Path, e: String) -> DatasetError {
    DatasetError::Arrow {
        path: path.to_path_buf(),
        row: 0,
        source: e.into(),
    }
}

impl ParquetSink {
    pub(crate) fn new(path: &Path, file: HashingFile) -> Result<ParquetSink, DatasetError> {
        let fields = record_fields().map_err(|e| schema_err(path, e))?;
        let builder = ArrayBuilder::from_arrow(&fields).map_err(|e| arrow_err(path, 0, e))?;
        let schema = Arc::new(Schema::new(fields));
        let level = ZstdLevel::try_new(3).map_err(|source| DatasetError::Parquet {
            path: path.to_path_buf(),
            source,
        })?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(level))
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Ids and texts are (nearly) unique: a dictionary would only be built and thrown away.
            .set_column_dictionary_enabled(ColumnPath::from("id"), false)
            .set_column_dictionary_enabled(ColumnPath::from("text"), false)
            .build();
        let writer = ArrowWriter::try_new(file, schema, Some(props)).map_err(|source| {
            DatasetError::Parquet {
                path: path.to_path_buf(),
                source,
            }
        })?;
        Ok(ParquetSink {
            writer,
            builder,
            pending: 0,
        })
    }

    pub(crate) fn push(&mut self, path: &Path, record: &Record) -> Result<(), DatasetError> {
        self.builder
            .push(record)
            .map_err(|e| arrow_err(path, 0, e))?;
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush_batch(path)?;
        }
        Ok(())
    }

    fn flush_batch(&mut self, path: &Path) -> Result<(), DatasetError> {
        let batch = self
            .builder
            .to_record_batch()
            .map_err(|e| arrow_err(path, 0, e))?;
        self.pending = 0;
        self.writer
            .write(&batch)
            .map_err(|source| DatasetError::Parquet {
                path: path.to_path_buf(),
                source,
            })
    }

    pub(crate) fn finish(mut self, path: &Path) -> Result<HashingFile, DatasetError> {
        if self.pending > 0 {
            self.flush_batch(path)?;
        }
        self.writer
            .into_inner()
            .map_err(|source| DatasetError::Parquet {
                path: path.to_path_buf(),
                source,
            })
    }
}

impl ParquetRecords {
    pub(crate) fn open(path: &Path, file: File) -> Result<ParquetRecords, DatasetError> {
        let parquet_err = |source| DatasetError::Parquet {
            path: path.to_path_buf(),
            source,
        };
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .map_err(parquet_err)?
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(parquet_err)?;
        Ok(ParquetRecords {
            path: path.to_path_buf(),
            reader,
            next_row: 1,
            ready: Vec::new().into_iter(),
            done: false,
        })
    }
}

impl Iterator for ParquetRecords {
    type Item = Result<Record, DatasetError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(record) = self.ready.next() {
                return Some(Ok(record));
            }
            if self.done {
                return None;
            }
            let batch = match self.reader.next() {
                None => {
                    self.done = true;
                    return None;
                }
                Some(Err(e)) => {
                    // A damaged page leaves the reader in an unknown state: stop after reporting.
                    self.done = true;
                    return Some(Err(arrow_err(&self.path, self.next_row, e)));
                }
                Some(Ok(batch)) => batch,
            };
            let row = self.next_row;
            self.next_row += batch.num_rows() as u64;
            match serde_arrow::from_record_batch::<Vec<Record>>(&batch) {
                Ok(records) => self.ready = records.into_iter(),
                Err(e) => return Some(Err(arrow_err(&self.path, row, e))),
            }
        }
    }
}
