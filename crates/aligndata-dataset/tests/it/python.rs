//! Parquet written here opens in pyarrow (required) and pandas (when installed).

use std::process::Command;

use aligndata_dataset::{DatasetWriter, Format, ManifestFields, WriterOptions};

use crate::full_records;

fn python(code: &str, args: &[&str]) -> std::process::Output {
    Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 must be on PATH for this test")
}

#[test]
fn parquet_dataset_opens_in_pyarrow_and_pandas() {
    let probe = python("import pyarrow", &[]);
    assert!(
        probe.status.success(),
        "pyarrow is required for this test: pip install pyarrow (and pandas)\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ds");
    let records = full_records();
    let mut writer = DatasetWriter::create(
        &dir,
        WriterOptions {
            format: Format::Parquet,
            shard_records: 2,
        },
    )
    .unwrap();
    for record in &records {
        writer.push(record).unwrap();
    }
    writer
        .finish(ManifestFields {
            stage: "test".into(),
            ..Default::default()
        })
        .unwrap();

    let code = r#"
import sys, glob, pyarrow.parquet as pq, pyarrow as pa
# The directory also holds manifest.json, so read the shards by pattern, as users do.
files = sorted(glob.glob(sys.argv[1] + "/part-*.parquet"))
print("files=%d" % len(files))
t = pq.read_table(files)
print("columns=" + ",".join(t.column_names))
print("rows=%d" % t.num_rows)
print("source=" + str(t.schema.field("source").type))
print("intended=" + str(t.schema.field("intended").type).split("<")[0])
print("labels=" + str(t.schema.field("labels").type).split("<")[0])
print("provenance=" + str(t.schema.field("provenance").type).split("<")[0])
print("text0=" + repr(t.column("text")[0].as_py()))
print("seed0=%s" % t.column("provenance")[0].as_py()["seed"])
try:
    import pandas
except ImportError:
    print("pandas=absent")
    sys.exit(0)
df = pandas.concat([pandas.read_parquet(f) for f in files])
print("pandas_rows=%d" % len(df))
print("pandas_source=" + ",".join(df["source"].tolist()))
"#;
    let out = python(code, &[dir.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "pyarrow failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("columns=id,text,source,provenance,intended,labels,scores,flags,responses"),
        "{stdout}"
    );
    assert!(stdout.contains("files=2"), "{stdout}");
    assert!(stdout.contains("rows=3"), "{stdout}");
    assert!(stdout.contains("source=large_string"), "{stdout}");
    assert!(stdout.contains("intended=map"), "{stdout}");
    assert!(stdout.contains("labels=large_list"), "{stdout}");
    assert!(stdout.contains("provenance=struct"), "{stdout}");
    assert!(
        stdout.contains(&format!("text0={:?}", records[0].text).replace('"', "'"))
            || stdout.contains("text0='Ich habe Angst"),
        "{stdout}"
    );
    assert!(stdout.contains("seed0=42"), "{stdout}");
    if stdout.contains("pandas=absent") {
        eprintln!("NOTE: pandas is not installed; checked pyarrow only");
    } else {
        assert!(stdout.contains("pandas_rows=3"), "{stdout}");
        assert!(
            stdout.contains("pandas_source=synthetic,real,feedback"),
            "{stdout}"
        );
    }
}
