//! Dataset directories: atomic replace, cleanup on drop, manifest counts.

use std::path::Path;

use aligndata_core::{Record, SourceKind};
use aligndata_dataset::{
    Dataset, DatasetWriter, Format, ManifestFields, QuarantineEntry, WriterOptions, config_hash,
};
use serde_json::json;

use crate::full_records;

fn fields(stage: &str) -> ManifestFields {
    ManifestFields {
        stage: stage.into(),
        config: json!({"b": 1, "a": {"y": [1, 2], "x": null}}),
        parents: vec!["../raw".into()],
        extra: json!({"rows_read": 5}),
    }
}

fn write(dir: &Path, options: WriterOptions, records: &[Record]) -> aligndata_dataset::Manifest {
    let mut writer = DatasetWriter::create(dir, options).unwrap();
    for record in records {
        writer.push(record).unwrap();
    }
    writer.finish(fields("test")).unwrap()
}

fn read_all(dir: &Path) -> Vec<Record> {
    Dataset::open(dir)
        .unwrap()
        .records()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn leftovers(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[test]
fn manifest_counts_shards_and_quarantine() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let records = full_records(); // synthetic (2 flags), real (kept), feedback (crisis)
    let mut many = Vec::new();
    for _ in 0..3 {
        many.extend(records.iter().cloned());
    }
    let mut writer = DatasetWriter::create(
        &dir,
        WriterOptions {
            format: Format::JsonlZst,
            shard_records: 4,
        },
    )
    .unwrap();
    for record in &many {
        writer.push(record).unwrap();
    }
    writer
        .quarantine(QuarantineEntry {
            file: "in.csv".into(),
            line: 3,
            reason: "bad".into(),
            raw: "x\ny".into(),
        })
        .unwrap();
    let manifest = writer.finish(fields("ingest")).unwrap();

    assert_eq!(manifest.counts.total, 9);
    assert_eq!(manifest.counts.kept, 3);
    assert_eq!(manifest.counts.quarantined, 1);
    assert_eq!(manifest.counts.by_source.get("synthetic"), Some(&3));
    assert_eq!(manifest.counts.by_source.get("real"), Some(&3));
    assert_eq!(manifest.counts.by_source.get("feedback"), Some(&3));
    assert_eq!(manifest.counts.by_flag.get("duplicate"), Some(&3));
    assert_eq!(manifest.counts.by_flag.get("pii"), Some(&3));
    assert_eq!(manifest.counts.by_flag.get("crisis"), Some(&3));
    let shard_files: Vec<_> = manifest
        .shards
        .iter()
        .map(|s| (s.file.as_str(), s.records))
        .collect();
    assert_eq!(
        shard_files,
        [
            ("part-00000.jsonl.zst", 4),
            ("part-00001.jsonl.zst", 4),
            ("part-00002.jsonl.zst", 1)
        ]
    );
    assert_eq!(
        manifest.config_hash,
        config_hash(&json!({"a": {"x": null, "y": [1, 2]}, "b": 1}))
    );
    assert!(
        manifest.created_at.ends_with('Z'),
        "{}",
        manifest.created_at
    );

    let opened = Dataset::open(&dir).unwrap();
    assert_eq!(opened.manifest, manifest);
    assert_eq!(read_all(&dir), many);
    assert_eq!(opened.quarantine().unwrap().len(), 1);
    for shard in &manifest.shards {
        assert_eq!(
            std::fs::metadata(dir.join(&shard.file)).unwrap().len(),
            shard.bytes
        );
    }
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn finish_replaces_an_existing_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let records = full_records();
    write(
        &dir,
        WriterOptions {
            format: Format::Jsonl,
            shard_records: 1,
        },
        &records,
    );
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 4);

    let manifest = write(
        &dir,
        WriterOptions {
            format: Format::Parquet,
            ..WriterOptions::default()
        },
        &records[..1],
    );
    assert_eq!(manifest.format, Format::Parquet);
    assert_eq!(read_all(&dir), records[..1]);
    // The old shards are gone with the old directory.
    let names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
    assert!(leftovers(tmp.path()).is_empty());
}

#[test]
fn drop_without_finish_leaves_the_old_dataset_intact() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let records = full_records();
    write(&dir, WriterOptions::default(), &records);
    {
        let mut writer = DatasetWriter::create(&dir, WriterOptions::default()).unwrap();
        writer
            .push(&Record::new(SourceKind::Real, "never finished".into()))
            .unwrap();
        assert_eq!(
            leftovers(tmp.path()).len(),
            1,
            "the temp dir exists while writing"
        );
    }
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
    assert_eq!(read_all(&dir), records);
}

#[test]
fn empty_dataset_has_one_empty_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("nested/new/ds");
    let manifest = write(
        &dir,
        WriterOptions {
            format: Format::Parquet,
            ..WriterOptions::default()
        },
        &[],
    );
    assert_eq!(manifest.shards.len(), 1);
    assert_eq!(manifest.counts.total, 0);
    assert!(read_all(&dir).is_empty());
}

#[test]
fn not_a_dataset_errors_say_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let err = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("no manifest.json in")
            && err.contains("is this an aligndata dataset?")
            && err.contains("hint:"),
        "{err}"
    );
    let err = Dataset::open(&tmp.path().join("missing"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not exist"), "{err}");

    // A directory holding other things is never replaced.
    let precious = tmp.path().join("home");
    std::fs::create_dir(&precious).unwrap();
    std::fs::write(precious.join("notes.txt"), "keep me").unwrap();
    let err = DatasetWriter::create(&precious, WriterOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("refusing to replace"), "{err}");
    assert!(precious.join("notes.txt").exists());

    std::fs::write(tmp.path().join("manifest.json"), "{\"schema_version\": 99}").unwrap();
    let err = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(
        err.contains("schema_version 99") && err.contains("upgrade"),
        "{err}"
    );
    std::fs::write(tmp.path().join("manifest.json"), "{").unwrap();
    let err = Dataset::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("invalid manifest"), "{err}");
}

#[test]
fn write_atomic_replaces_a_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("report.json");
    aligndata_dataset::write_atomic(&path, b"one").unwrap();
    aligndata_dataset::write_atomic(&path, b"two").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"two");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
}
