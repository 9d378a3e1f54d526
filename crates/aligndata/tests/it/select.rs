//! `aligndata select`: a planted outlier is flagged with its reason, the budget is met exactly and
//! balanced across cells, and the output holds only the selection unless --keep-all.

use std::path::Path;

use crate::util::{TestContext, read_jsonl};

const TAXONOMY: &str = "
name: t
dimensions:
  - id: topic
    values:
      - id: work
        description: work
      - id: school
        description: school
  - id: mood
    values:
      - id: anxious
        description: anxious
      - id: sad
        description: sad
";

fn parts(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut shards: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    shards.sort();
    shards
}

fn records(dir: &Path) -> Vec<serde_json::Value> {
    parts(dir).iter().flat_map(|p| read_jsonl(p)).collect()
}

/// Ingests texts, then gives every record the labels its `topic mood:` prefix names (the way
/// `aligndata label` would), leaving the gibberish unlabelled-by-prefix but labelled work/sad.
fn labelled_dataset(ctx: &TestContext) {
    let subjects = [
        "my manager",
        "my teacher",
        "my sister",
        "my friend",
        "my coach",
    ];
    let objects = ["report", "essay", "plan", "drawing", "talk", "idea"];
    let mut lines = String::new();
    for (topic, mood, n) in [
        ("work", "anxious", 12),
        ("work", "sad", 12),
        ("school", "anxious", 12),
        ("school", "sad", 4),
    ] {
        for i in 0..n {
            let text = format!(
                "{topic} {mood}: I keep worrying that {} hated my {} and I cannot stop thinking about it",
                subjects[i % 5],
                objects[(i / 2) % 6]
            );
            lines.push_str(&serde_json::json!({ "text": text }).to_string());
            lines.push('\n');
        }
    }
    lines.push_str(
        "{\"text\": \"work sad: zq8#kk vbnw0x plöj ttt 77 ##xx qwrrk mmn 0x0x0x fjjjdd\"}\n",
    );
    ctx.write("posts.jsonl", lines.as_bytes());
    ctx.write("taxonomy.yaml", TAXONOMY.as_bytes());
    let run = ctx.run(&["ingest", "posts.jsonl", "--out", "real"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    for part in parts(&ctx.path("real")) {
        let mut out = String::new();
        for mut r in read_jsonl(&part) {
            let text = r["text"].as_str().unwrap().to_string();
            let (topic, rest) = text.split_once(' ').unwrap();
            let mood = rest.split(':').next().unwrap();
            r["labels"] = serde_json::json!([
                { "dimension": "topic", "value": topic, "confidence": 0.9, "method": "test" },
                { "dimension": "mood", "value": mood, "confidence": 0.9, "method": "test" },
            ]);
            out.push_str(&r.to_string());
            out.push('\n');
        }
        std::fs::write(&part, out).unwrap();
    }
}

#[test]
fn selects_a_balanced_budget_and_flags_the_planted_outlier() {
    let ctx = TestContext::new();
    labelled_dataset(&ctx);
    let args = [
        "select",
        "real",
        "--taxonomy",
        "taxonomy.yaml",
        "--budget",
        "16",
        "--embedder",
        "hashed",
        "-k",
        "5",
    ];
    let run = ctx.run(&[&args[..], &["--out", "sel", "--json"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = &run.json()["select"];
    assert_eq!(s["records"], 41, "{s}");
    assert_eq!(s["selected"], 16, "{s}");
    assert_eq!(s["written"], 16, "{s}");
    assert_eq!(s["outliers"], 1, "{s}");
    let top = &s["top_outliers"][0];
    assert!(top["excerpt"].as_str().unwrap().contains("zq8#kk"), "{s}");
    assert!(
        top["reason"].as_str().unwrap().starts_with("knn distance"),
        "{s}"
    );
    // 4 cells, 16 slots: 4 each (school/sad holds exactly 4).
    for cell in s["cells"].as_array().unwrap() {
        assert_eq!(cell["selected"], 4, "{s}");
    }
    assert_eq!(
        s["values_missing_from_selection"].as_array().unwrap().len(),
        0,
        "{s}"
    );
    let out = records(&ctx.path("sel"));
    assert_eq!(out.len(), 16);
    assert!(
        out.iter()
            .all(|r| r["flags"].as_array().unwrap().is_empty())
    );
    assert!(out.iter().all(|r| {
        r["scores"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "outlier")
    }));

    // Same seed, same selection.
    let again = ctx.run(&[&args[..], &["--out", "sel2"]].concat());
    assert_eq!(again.code, 0, "{}", again.stderr);
    let ids = |dir: &str| {
        records(&ctx.path(dir))
            .iter()
            .map(|r| r["id"].to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids("sel"), ids("sel2"));
    assert!(
        again.stderr.contains("16 of 41 records selected"),
        "{}",
        again.stderr
    );

    // --keep-all: every record, each set-aside one with a reason.
    let run = ctx.run(&[&args[..], &["--out", "all", "--keep-all"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let all = records(&ctx.path("all"));
    assert_eq!(all.len(), 41);
    let flag = |r: &serde_json::Value, kind: &str| {
        r["flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == kind)
    };
    let planted = all
        .iter()
        .find(|r| r["text"].as_str().unwrap().contains("zq8#kk"))
        .unwrap();
    assert!(flag(planted, "outlier"), "{planted}");
    assert_eq!(
        all.iter().filter(|r| flag(r, "not_selected")).count(),
        41 - 16 - 1
    );

    // Bad settings are errors with the flag named.
    let bad = ctx.run(&[&args[..], &["--out", "x", "--quota", "fancy"]].concat());
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--quota"), "{}", bad.stderr);
}

#[test]
fn past_the_brute_force_limit_the_embeddings_stream_from_disk_with_the_same_guarantees() {
    let ctx = TestContext::new();
    labelled_dataset(&ctx);
    let run = ctx.run(&[
        "select",
        "real",
        "--taxonomy",
        "taxonomy.yaml",
        "--budget",
        "16",
        "--embedder",
        "hashed",
        "-k",
        "5",
        "--brute-force-limit",
        "10",
        "--reference-size",
        "30",
        "--out",
        "big/sel",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = &run.json()["select"];
    assert_eq!(s["outlier_search"], "reference sample of 30", "{s}");
    assert_eq!(s["selected"], 16, "{s}");
    assert_eq!(s["outliers"], 1, "{s}");
    assert!(
        s["top_outliers"][0]["excerpt"]
            .as_str()
            .unwrap()
            .contains("zq8#kk"),
        "{s}"
    );
    for cell in s["cells"].as_array().unwrap() {
        assert_eq!(cell["selected"], 4, "{s}");
    }
    assert_eq!(records(&ctx.path("big/sel")).len(), 16);
    // The temporary embeddings file beside the output is gone.
    let beside: Vec<String> = std::fs::read_dir(ctx.path("big"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(beside, vec!["sel".to_string()], "{beside:?}");
}
