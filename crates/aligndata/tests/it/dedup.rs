//! `aligndata dedup`: duplicates are flagged (never dropped) with the keeper's id, across
//! datasets too; counsel-chat's repeated questions collapse to one keeper per distinct text.

use std::collections::HashSet;
use std::path::Path;

use crate::util::{TestContext, read_jsonl};

fn records(dir: &Path) -> Vec<serde_json::Value> {
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
    shards.iter().flat_map(|p| read_jsonl(p)).collect()
}

fn duplicate_flag(record: &serde_json::Value) -> Option<&serde_json::Value> {
    record["flags"]
        .as_array()?
        .iter()
        .find(|f| f["kind"] == "duplicate")
}

#[test]
fn flags_exact_and_near_duplicates_across_two_datasets() {
    let ctx = TestContext::new();
    let real = "{\"text\": \"Every time my manager asks me to present the numbers to the whole team I freeze and forget everything\"}\n\
                {\"text\": \"nobody at the new job ever talks to me at lunch\"}\n\
                {\"text\": \"Nobody at the new job EVER talks to me at lunch!!\"}\n";
    let synthetic = "{\"text\": \"Every time my director asks me to present the numbers to the whole team I freeze and forget everything\"}\n\
                     {\"text\": \"I spent the whole weekend redoing a report nobody will read\"}\n";
    ctx.write("real.jsonl", real.as_bytes());
    ctx.write("synthetic.jsonl", synthetic.as_bytes());
    assert_eq!(ctx.run(&["ingest", "real.jsonl", "--out", "real"]).code, 0);
    assert_eq!(
        ctx.run(&["ingest", "synthetic.jsonl", "--out", "synthetic"])
            .code,
        0
    );

    let run = ctx.run(&[
        "dedup",
        "real",
        "synthetic",
        "--out",
        "pool",
        "--threshold",
        "0.7",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = &run.json()["dedup"];
    assert_eq!(summary["records"], 5, "{summary}");
    assert_eq!(summary["duplicates"], 2, "{summary}");
    assert_eq!(summary["by_method"]["exact"], 1, "{summary}");
    assert_eq!(summary["by_method"]["near"], 1, "{summary}");
    assert_eq!(summary["inputs"][1]["keepers_in"]["real"], 1, "{summary}");

    let out = records(&ctx.path("pool"));
    assert_eq!(out.len(), 5, "nothing is dropped");
    let flag = duplicate_flag(&out[2]).expect("the shouted copy is flagged");
    assert_eq!(flag["other_id"], out[1]["id"]);
    assert!(
        flag["reason"]
            .as_str()
            .unwrap()
            .starts_with("exact duplicate"),
        "{flag}"
    );
    let flag = duplicate_flag(&out[3]).expect("the one-word variant is flagged");
    assert_eq!(flag["other_id"], out[0]["id"]);
    let reason = flag["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("near duplicate (jaccard≈") && reason.ends_with("from real"),
        "{reason}"
    );
    assert!(duplicate_flag(&out[0]).is_none() && duplicate_flag(&out[4]).is_none());

    // The human summary says where things went.
    let run = ctx.run(&["dedup", "real", "synthetic", "--out", "pool", "--no-near"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("1 flagged duplicate"), "{}", run.stderr);
}

#[test]
fn bad_flags_are_clear_errors() {
    let ctx = TestContext::new();
    ctx.write("a.jsonl", b"{\"text\": \"hello there\"}\n");
    assert_eq!(ctx.run(&["ingest", "a.jsonl", "--out", "a"]).code, 0);
    let run = ctx.run(&["dedup", "a", "--out", "o", "--shingle", "byte:3"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("shingle"), "{}", run.stderr);
    let run = ctx.run(&["dedup", "a", "--out", "o", "--bands", "20", "--rows", "10"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bands"), "{}", run.stderr);
    let run = ctx.run(&["dedup", "missing", "--out", "o"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("missing"), "{}", run.stderr);
    assert!(!ctx.path("o").exists());
}

/// Lowercase, letters/digits/whitespace only, whitespace collapsed: written here independently
/// of the dedup code.
fn independent_normal_form(text: &str) -> String {
    let kept: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn counsel_chat_repeated_questions_get_one_keeper_per_distinct_text() {
    let csv = crate::util::repo_root().join("../shared/data/counsel-chat/counsel_chat.csv");
    if !csv.exists() {
        eprintln!(
            "SKIPPED counsel_chat dedup test: {} is absent",
            csv.display()
        );
        return;
    }
    let ctx = TestContext::new();
    let csv = csv.to_str().unwrap();
    let run = ctx.run(&[
        "ingest",
        csv,
        "--text-field",
        "questionText",
        "--id-field",
        "questionID",
        "--out",
        "real",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = ctx.run(&["dedup", "real", "--no-near", "--out", "deduped", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let out = records(&ctx.path("deduped"));
    let distinct: HashSet<String> = out
        .iter()
        .map(|r| independent_normal_form(r["text"].as_str().unwrap()))
        .filter(|t| !t.is_empty())
        .collect();
    let kept = out.iter().filter(|r| duplicate_flag(r).is_none()).count();
    assert_eq!(kept, distinct.len());
    assert!(
        distinct.len() < out.len() / 2,
        "each question repeats once per answer"
    );
    let summary = &run.json()["dedup"];
    assert_eq!(
        summary["duplicates"].as_u64().unwrap() as usize,
        out.len() - distinct.len()
    );
}
