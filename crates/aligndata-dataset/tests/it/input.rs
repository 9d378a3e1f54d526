//! Raw input: good rows come through, each bad row is a BadRow naming file, line and reason.

use std::path::Path;

use aligndata_dataset::{BadRow, InputRow, InputSpec, RawRow, read_input};

fn rows(path: &Path, spec: &InputSpec) -> (Vec<RawRow>, Vec<BadRow>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for row in read_input(path, spec).unwrap() {
        match row {
            Ok(row) => good.push(row),
            Err(row) => bad.push(row),
        }
    }
    (good, bad)
}

fn spec(text_field: &str) -> InputSpec {
    InputSpec {
        text_field: text_field.into(),
        ..InputSpec::default()
    }
}

fn check_bad(bad: &BadRow, line: u64, reason_part: &str) {
    assert_eq!(bad.line, line, "{bad}");
    assert!(
        bad.reason.contains(reason_part),
        "expected {reason_part:?} in {bad}"
    );
    assert!(
        bad.to_string().contains(&format!("{}:{line}:", bad.file)),
        "{bad}"
    );
}

#[test]
fn jsonl_bad_rows_and_good_rows_around_them() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.jsonl");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"\xEF\xBB\xBF{\"post\":{\"body\":\"first\"},\"id\":7}\n"); // 1 good, BOM
    bytes.extend_from_slice(b"{\"post\":{\"body\":\"bad \xFF byte\"}}\n"); // 2 invalid UTF-8
    bytes.extend_from_slice(b"{\"post\":{\"body\":\"broken\"\n"); // 3 broken JSON
    bytes.extend_from_slice(b"{\"post\":{\"title\":\"no body\"}}\n"); // 4 missing field
    bytes.extend_from_slice(b"{\"post\":{\"body\":42}}\n"); // 5 not a string
    bytes.extend_from_slice(b"{\"post\":{\"body\":\"  \\n \"}}\n"); // 6 whitespace only
    bytes.extend_from_slice(b"\n"); // 7 blank: skipped
    bytes.extend_from_slice(b"[1,2]\n"); // 8 not an object
    bytes.extend_from_slice(b"{\"post\":\"flat\"}\n"); // 9 parent not an object
    bytes.extend_from_slice(b"{\"post\":{\"body\":\"last\\nline\"},\"id\":\"x-1\"}\r\n"); // 10 good, CRLF
    bytes.extend_from_slice(b"{\"post.body\":\"dotted key\"}"); // 11 good, no final newline
    std::fs::write(&path, bytes).unwrap();

    let spec = InputSpec {
        id_field: Some("id".into()),
        ..spec("post.body")
    };
    let (good, bad) = rows(&path, &spec);
    let texts: Vec<_> = good
        .iter()
        .map(|r| (r.line, r.text.as_str(), r.original_id.as_deref()))
        .collect();
    assert_eq!(
        texts,
        [
            (1, "first", Some("7")),
            (10, "last\nline", Some("x-1")),
            (11, "dotted key", None)
        ]
    );
    assert_eq!(good[0].file, path.display().to_string());
    assert_eq!(bad.len(), 7, "{bad:#?}");
    check_bad(&bad[0], 2, "invalid UTF-8");
    assert!(bad[0].raw.contains("bad \u{FFFD} byte"), "{:?}", bad[0].raw);
    check_bad(&bad[1], 3, "not valid JSON");
    check_bad(
        &bad[2],
        4,
        "field `post.body` is missing: no `body` under `post`; keys there: title",
    );
    check_bad(&bad[3], 5, "field `post.body` is a number, not a string");
    check_bad(&bad[4], 6, "`post.body` is empty or only whitespace");
    check_bad(&bad[5], 8, "JSON array, not an object");
    check_bad(&bad[6], 9, "`post` is a string");
}

#[test]
fn jsonl_ten_megabyte_line_is_a_bad_row_and_reading_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("big.jsonl");
    let huge = "é".repeat(5 << 20); // 10 MiB of two-byte characters
    std::fs::write(
        &path,
        format!("{{\"text\":\"ok 1\"}}\n{{\"text\":\"{huge}\"}}\n{{\"text\":\"ok 3\"}}\n"),
    )
    .unwrap();
    let (good, bad) = rows(&path, &spec("text"));
    assert_eq!(
        good.iter()
            .map(|r| (r.line, r.text.as_str()))
            .collect::<Vec<_>>(),
        [(1, "ok 1"), (3, "ok 3")]
    );
    assert_eq!(bad.len(), 1);
    check_bad(
        &bad[0],
        2,
        &format!(
            "line is {} bytes, over the limit of 1048576",
            huge.len() + 11
        ),
    );
    assert!(
        bad[0].raw.len() <= 2048 + 4 && bad[0].raw.starts_with("{\"text\":\"éé"),
        "{}",
        bad[0].raw.len()
    );
    assert!(
        !bad[0].raw.contains('\u{FFFD}'),
        "the excerpt must not cut a character"
    );
}

#[test]
fn jsonl_zst_reads_like_jsonl() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.jsonl.zst");
    let data = zstd::encode_all(&b"{\"text\":\"a\"}\n{\"text\":\"b\"}\n"[..], 3).unwrap();
    std::fs::write(&path, data).unwrap();
    let (good, bad) = rows(&path, &spec("text"));
    assert!(bad.is_empty());
    assert_eq!(
        good.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn csv_multiline_cells_wrong_counts_and_bad_utf8() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.csv");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"id,questionText,topic\n"); // 1
    bytes.extend_from_slice(b"1,\"line one\nline two, with comma\n\"\"quoted\"\"\",anxiety\n"); // 2-4
    bytes.extend_from_slice(b"2,too few\n"); // 5
    bytes.extend_from_slice(b"3,\"bad \xFF\",x\n"); // 6
    bytes.extend_from_slice(b"4,   ,x\n"); // 7 whitespace only
    bytes.extend_from_slice(b"5,fine,x,extra\n"); // 8 too many
    bytes.extend_from_slice(b"6,last,x\n"); // 9
    std::fs::write(&path, bytes).unwrap();
    let spec = InputSpec {
        id_field: Some("id".into()),
        ..spec("questionText")
    };
    let (good, bad) = rows(&path, &spec);
    let got: Vec<_> = good
        .iter()
        .map(|r| (r.line, r.text.as_str(), r.original_id.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            (2, "line one\nline two, with comma\n\"quoted\"", Some("1")),
            (9, "last", Some("6"))
        ]
    );
    assert_eq!(bad.len(), 4, "{bad:#?}");
    check_bad(&bad[0], 5, "row has 2 fields but the header has 3");
    assert_eq!(bad[0].raw, "2,too few");
    check_bad(&bad[1], 6, "invalid UTF-8 in column `questionText`");
    check_bad(&bad[2], 7, "`questionText` is empty");
    check_bad(&bad[3], 8, "row has 4 fields but the header has 3");
}

#[test]
fn tsv_with_quoted_multiline_cell_and_oversized_row() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.tsv");
    let long = "x".repeat(300);
    std::fs::write(
        &path,
        format!("text\tlabel\n\"two\nlines\"\t1\n{long}\t2\nshort\t3\n"),
    )
    .unwrap();
    let spec = InputSpec {
        max_line_bytes: 100,
        ..spec("text")
    };
    let (good, bad) = rows(&path, &spec);
    assert_eq!(
        good.iter()
            .map(|r| (r.line, r.text.as_str()))
            .collect::<Vec<_>>(),
        [(2, "two\nlines"), (5, "short")]
    );
    assert_eq!(bad.len(), 1);
    check_bad(&bad[0], 4, "over the limit of 100");
}

#[test]
fn csv_missing_column_is_a_whole_file_error_naming_the_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("in.csv");
    std::fs::write(&path, "a,b\n1,2\n").unwrap();
    let err = read_input(&path, &spec("text")).err().unwrap().to_string();
    assert!(
        err.contains("no column \"text\"; the columns are: \"a\", \"b\""),
        "{err}"
    );
    assert!(err.contains("in.csv"), "{err}");
}

#[test]
fn missing_file_and_directory_are_one_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let err = read_input(&tmp.path().join("nope.jsonl"), &spec("text"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("nope.jsonl does not exist"), "{err}");
    let dir = tmp.path().join("dir.csv");
    std::fs::create_dir(&dir).unwrap();
    let err = read_input(&dir, &spec("text")).err().unwrap().to_string();
    assert!(err.contains("is a directory"), "{err}");
    let err = read_input(&tmp.path().join("x.docx"), &spec("text"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("unknown file format"), "{err}");
}

#[test]
fn parquet_input_reads_a_text_column() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("records.parquet");
    let records = crate::full_records();
    aligndata_dataset::write_records(&path, aligndata_dataset::Format::Parquet, &records).unwrap();
    let spec = InputSpec {
        id_field: Some("id".into()),
        ..spec("text")
    };
    let items: Vec<InputRow> = read_input(&path, &spec).unwrap().collect();
    assert_eq!(items.len(), 3);
    let first = items[0].as_ref().unwrap();
    assert_eq!(
        (
            first.line,
            first.text.as_str(),
            first.original_id.as_deref()
        ),
        (1, records[0].text.as_str(), Some(records[0].id.as_str()))
    );
    check_bad(
        items[1].as_ref().unwrap_err(),
        2,
        "empty or only whitespace",
    );
    assert!(items[2].is_ok());
    let err = read_input(&path, &self::spec("labels"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not text"), "{err}");
    let err = read_input(&path, &self::spec("body"))
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("\"id\", \"text\", \"source\""), "{err}");
}

#[test]
fn real_counsel_chat_csv_if_present() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/data/counsel-chat/counsel_chat.csv");
    if !path.exists() {
        eprintln!(
            "SKIPPED real_counsel_chat_csv_if_present: {} is absent",
            path.display()
        );
        return;
    }
    let (good, bad) = rows(
        &path,
        &InputSpec {
            id_field: Some("questionID".into()),
            ..spec("questionText")
        },
    );
    assert_eq!(good.len() + bad.len(), 2129, "{bad:#?}");
    assert!(good.len() > 2000);
    assert!(good.iter().any(|r| r.text.contains('\n')));
}
