//! JSONL → Parquet → JSONL keeps every field and every byte.

use aligndata_dataset::{Format, read_records, write_records};

use crate::full_records;

#[test]
fn jsonl_parquet_jsonl_is_lossless() {
    let tmp = tempfile::tempdir().unwrap();
    let records = full_records();
    let jsonl = tmp.path().join("a.jsonl");
    let parquet = tmp.path().join("b.parquet");
    let back = tmp.path().join("c.jsonl");

    write_records(&jsonl, Format::Jsonl, &records).unwrap();
    let from_jsonl: Vec<_> = read_records(&jsonl)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(from_jsonl, records);

    let summary = write_records(&parquet, Format::Parquet, &from_jsonl).unwrap();
    assert_eq!(summary.records, 3);
    let from_parquet: Vec<_> = read_records(&parquet)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(from_parquet, records);
    // -0.0 == 0.0 for PartialEq: check the sign survived too.
    assert!(from_parquet[0].scores[0].value.is_sign_negative());

    write_records(&back, Format::Jsonl, &from_parquet).unwrap();
    assert_eq!(
        std::fs::read(&jsonl).unwrap(),
        std::fs::read(&back).unwrap()
    );
}

#[test]
fn zstd_roundtrip_and_many_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let base = full_records();
    // More rows than one JSONL parse block of small lines and one Parquet batch.
    let records: Vec<_> = (0..20_000)
        .map(|i| {
            let mut r = base[i % base.len()].clone();
            r.text = format!("{} #{i}", r.text);
            r
        })
        .collect();
    for format in [Format::JsonlZst, Format::Parquet, Format::Jsonl] {
        let path = tmp.path().join(format!("many.{}", format.extension()));
        let summary = write_records(&path, format, &records).unwrap();
        assert_eq!(summary.bytes, std::fs::metadata(&path).unwrap().len());
        assert_eq!(summary.sha256.len(), 64);
        let back: Vec<_> = read_records(&path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(back, records, "{format}");
    }
}

#[test]
fn empty_parquet_file_has_the_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("empty.parquet");
    write_records(&path, Format::Parquet, Vec::<aligndata_core::Record>::new()).unwrap();
    assert_eq!(read_records(&path).unwrap().count(), 0);
    let names: Vec<String> = aligndata_dataset::record_fields()
        .unwrap()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(
        names,
        [
            "id",
            "text",
            "source",
            "provenance",
            "intended",
            "labels",
            "scores",
            "flags",
            "responses"
        ]
    );
}

#[test]
fn broken_record_line_names_file_and_line_and_reading_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("bad.jsonl");
    let good = serde_json::to_string(&full_records()[1]).unwrap();
    std::fs::write(&path, format!("{good}\n{{not json\n\n{good}")).unwrap();
    let items: Vec<_> = read_records(&path).unwrap().collect();
    assert_eq!(items.len(), 3);
    assert!(items[0].is_ok() && items[2].is_ok());
    let err = items[1].as_ref().unwrap_err().to_string();
    assert!(err.contains("bad.jsonl:2:"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn unknown_extension_and_missing_file_are_clear() {
    let err = read_records(std::path::Path::new("x.txt"))
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("unknown file format") && err.contains(".parquet"),
        "{err}"
    );
    let err = read_records(std::path::Path::new("/nonexistent/x.jsonl"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("/nonexistent/x.jsonl does not exist"), "{err}");
}
