//! `aligndata ingest`: bad input lands in quarantine with its reason; `--strict` fails on it;
//! the same records come out of JSONL and Parquet datasets.

use crate::util::{TestContext, read_jsonl};

/// Every bad-input case of issue #2, one per row, between good rows.
fn bad_jsonl() -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"{\"id\": \"a\", \"text\": \"I keep rewriting the same slide\"}\n");
    bytes.extend_from_slice(b"{\"id\": \"b\", \"text\": \"broken \xff\xfe utf8\"}\n");
    bytes.extend_from_slice(b"{\"id\": \"c\", \"text\": \"unterminated\n");
    bytes.extend_from_slice(b"{\"id\": \"d\", \"text\": \"   \"}\n");
    bytes.extend_from_slice(b"{\"id\": \"e\", \"body\": \"no text field here\"}\n");
    bytes.extend_from_slice(
        format!(
            "{{\"id\": \"f\", \"text\": \"{}\"}}\n",
            "x".repeat(10 << 20)
        )
        .as_bytes(),
    );
    bytes.extend_from_slice(
        b"{\"id\": \"g\", \"text\": \"my sister says I never finish anything\"}\n",
    );
    bytes
}

#[test]
fn every_bad_row_lands_in_quarantine_with_its_line_and_reason() {
    let ctx = TestContext::new();
    let input = ctx.write("posts.jsonl", &bad_jsonl());
    let run = ctx.run(&[
        "ingest",
        input.to_str().unwrap(),
        "--id-field",
        "id",
        "--out",
        "ds",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = run.json();
    assert_eq!(summary["ingest"]["records"], 2, "{summary}");
    assert_eq!(summary["ingest"]["quarantined"], 5, "{summary}");

    let quarantine = read_jsonl(&ctx.path("ds/quarantine.jsonl"));
    let lines: Vec<u64> = quarantine
        .iter()
        .map(|q| q["line"].as_u64().unwrap())
        .collect();
    assert_eq!(lines, vec![2, 3, 4, 5, 6]);
    for entry in &quarantine {
        assert!(entry["file"].as_str().unwrap().ends_with("posts.jsonl"));
        assert!(!entry["reason"].as_str().unwrap().is_empty());
    }
    let reasons: Vec<String> = quarantine
        .iter()
        .map(|q| q["reason"].as_str().unwrap().to_lowercase())
        .collect();
    assert!(reasons[0].contains("utf-8"), "{}", reasons[0]);
    assert!(reasons[1].contains("json"), "{}", reasons[1]);
    assert!(reasons[2].contains("empty"), "{}", reasons[2]);
    assert!(
        reasons[3].contains("text"),
        "missing field should be named: {}",
        reasons[3]
    );
    assert!(
        reasons[4].contains("long") || reasons[4].contains("bytes"),
        "{}",
        reasons[4]
    );
    // The quarantined 10 MB row is kept only as a bounded excerpt.
    assert!(quarantine[4]["raw"].as_str().unwrap().len() < 100_000);

    let stats = ctx.run(&["stats", "ds", "--json"]);
    assert_eq!(stats.json()["records"], 2);
    assert_eq!(stats.json()["quarantined"], 5);
}

#[test]
fn strict_fails_on_the_first_bad_row_naming_it() {
    let ctx = TestContext::new();
    let input = ctx.write("posts.jsonl", &bad_jsonl());
    let run = ctx.run(&["ingest", input.to_str().unwrap(), "--out", "ds", "--strict"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("posts.jsonl:2"), "{}", run.stderr);
    assert!(
        !ctx.path("ds").exists(),
        "a failed run must not leave a dataset behind"
    );
}

#[test]
fn csv_wrong_column_count_and_missing_column() {
    let ctx = TestContext::new();
    let csv = "id,text\n1,\"a message\nover two lines\"\n2,too,many,cells\n3,fine\n";
    let input = ctx.write("q.csv", csv.as_bytes());
    let run = ctx.run(&[
        "ingest",
        input.to_str().unwrap(),
        "--id-field",
        "id",
        "--out",
        "ds",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["ingest"]["records"], 2);
    let quarantine = read_jsonl(&ctx.path("ds/quarantine.jsonl"));
    assert_eq!(quarantine.len(), 1);
    assert_eq!(quarantine[0]["line"], 4, "{:?}", quarantine[0]);

    let run = ctx.run(&[
        "ingest",
        input.to_str().unwrap(),
        "--text-field",
        "body",
        "--out",
        "ds2",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("body"),
        "the missing column is named: {}",
        run.stderr
    );
}

#[test]
fn missing_input_file_is_one_clear_error() {
    let ctx = TestContext::new();
    let run = ctx.run(&["ingest", "nowhere.jsonl", "--out", "ds"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nowhere.jsonl"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
}

#[test]
fn jsonl_and_parquet_datasets_hold_the_same_records() {
    let ctx = TestContext::new();
    let mut input = String::new();
    for i in 0..50 {
        input.push_str(&serde_json::json!({ "id": i, "text": format!("message {i}: ünïcode and a \"quote\"\nnew line") }).to_string());
        input.push('\n');
    }
    let input = ctx.write("in.jsonl", input.as_bytes());
    for (format, out) in [("jsonl", "a"), ("parquet", "b"), ("jsonl.zst", "c")] {
        let run = ctx.run(&[
            "ingest",
            input.to_str().unwrap(),
            "--id-field",
            "id",
            "--format",
            format,
            "--out",
            out,
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let a = ctx.run(&["inspect", "a", "-n", "0"]).stdout;
    let b = ctx.run(&["inspect", "b", "-n", "0"]).stdout;
    let c = ctx.run(&["inspect", "c", "-n", "0"]).stdout;
    assert_eq!(a.lines().count(), 50);
    assert_eq!(a, b);
    assert_eq!(a, c);
}

/// A Parquet dataset written by aligndata opens in pyarrow with the record's columns.
#[test]
fn parquet_dataset_opens_in_pyarrow() {
    let ctx = TestContext::new();
    let input = ctx.write(
        "in.jsonl",
        b"{\"text\": \"first\"}\n{\"text\": \"second\"}\n",
    );
    let run = ctx.run(&[
        "ingest",
        input.to_str().unwrap(),
        "--format",
        "parquet",
        "--out",
        "ds",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let script = r#"
import glob, sys, pyarrow.parquet as pq
files = sorted(glob.glob(sys.argv[1] + "/*.parquet"))
t = pq.read_table(files[0])
print(",".join(t.column_names))
print(t.num_rows)
print(t.column("text").to_pylist())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script, ctx.path("ds").to_str().unwrap()])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "pyarrow failed (install it: python3 -m pip install pyarrow): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut lines = stdout.lines();
    let columns = lines.next().unwrap();
    for column in [
        "id",
        "text",
        "source",
        "provenance",
        "intended",
        "labels",
        "scores",
        "flags",
        "responses",
    ] {
        assert!(
            columns.split(',').any(|c| c == column),
            "missing column {column} in {columns}"
        );
    }
    assert_eq!(lines.next(), Some("2"));
    assert_eq!(lines.next(), Some("['first', 'second']"));
}

/// GoEmotions-style TSV: no header row, columns named by position.
#[test]
fn tsv_without_header_reads_columns_by_position() {
    let ctx = TestContext::new();
    let input = ctx.write(
        "c.tsv",
        b"I hate that I froze\t2,25\tab1\nthanks [NAME], that helps\t15\tab2\n",
    );
    let run = ctx.run(&[
        "ingest",
        input.to_str().unwrap(),
        "--no-header",
        "--text-field",
        "1",
        "--id-field",
        "3",
        "--out",
        "ds",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["ingest"]["records"], 2);
    let records: Vec<serde_json::Value> = ctx
        .run(&["inspect", "ds", "-n", "0"])
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records[0]["text"], "I hate that I froze");
    assert_eq!(records[1]["provenance"]["original_id"], "ab2");
    assert_eq!(records[1]["provenance"]["line"], 2);
}
