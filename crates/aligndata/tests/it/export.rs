//! `aligndata export` end to end: the files trainers read, with exact field names, splits, and
//! a card; bad flags are errors with hints, not panics.

use std::path::Path;

use serde_json::{Value, json};

use crate::util::{TestContext, read_jsonl};

/// Writes a dataset directory by hand (one JSONL shard and a manifest), as a judged stage would.
pub fn write_dataset(ctx: &TestContext, name: &str, records: &[Value]) {
    let dir = ctx.path(name);
    std::fs::create_dir_all(&dir).unwrap();
    let mut body = String::new();
    for r in records {
        body.push_str(&r.to_string());
        body.push('\n');
    }
    std::fs::write(dir.join("part-00000.jsonl"), &body).unwrap();
    let kept = records
        .iter()
        .filter(|r| r["flags"].as_array().is_none_or(|f| f.is_empty()))
        .count();
    let manifest = json!({
        "schema_version": 1, "tool_version": "test", "created_at": "2026-01-01T00:00:00Z",
        "stage": "judge", "config": {}, "config_hash": "", "parents": [], "format": "jsonl",
        "shards": [{"file": "part-00000.jsonl", "records": records.len(), "bytes": body.len()}],
        "counts": {"total": records.len(), "kept": kept, "by_source": {}, "by_flag": {"duplicate": records.len() - kept}, "quarantined": 0},
        "extra": null
    });
    std::fs::write(dir.join("manifest.json"), manifest.to_string()).unwrap();
}

/// A judged record: two responses, the second chosen, the first rejected.
pub fn judged(i: usize, source: &str, theme: &str, situation: &str, text: &str) -> Value {
    json!({
        "id": format!("{source}-{i:04}"), "text": text, "source": source,
        "provenance": if source == "synthetic" { json!({"model": "smollm2-135m"}) } else { json!({"file": "forum.jsonl", "line": i}) },
        "labels": [
            {"dimension": "theme", "value": theme, "confidence": 0.9, "method": "prototype"},
            {"dimension": "situation", "value": situation, "confidence": 0.8, "method": "prototype"}
        ],
        "scores": [{"name": "judge.chosen", "value": 1.0, "reason": ""}, {"name": "judge.rejected", "value": 0.0, "reason": ""}],
        "flags": [],
        "responses": [
            {"text": "Just think positive!", "model": "smollm2-135m", "strategy": "advise", "scores": [{"name": "judge.total", "value": 0.2, "reason": "toxic positivity"}]},
            {"text": "That sounds exhausting. What happened?", "model": "smollm2-135m", "strategy": "explore", "scores": [{"name": "judge.total", "value": 0.9, "reason": "validates, asks"}]}
        ]
    })
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn all_rows(dir: &Path) -> Vec<Value> {
    ["train", "validation", "test"]
        .iter()
        .flat_map(|s| read_jsonl(&dir.join(format!("{s}.jsonl"))))
        .collect()
}

#[test]
fn writes_training_files_splits_and_card() {
    let ctx = TestContext::new();
    let words = [
        "deadline", "sister", "exam", "rent", "coach", "violin", "thesis", "wedding", "laptop",
        "garden",
    ];
    let mut records: Vec<Value> = (0..60)
        .map(|i| {
            let text = format!(
                "{} {} {} and {} worry me, case {i}",
                words[i % 10],
                words[(i / 10) % 10],
                words[(i * 3) % 10],
                i * 37
            );
            judged(
                i,
                if i % 3 == 0 { "synthetic" } else { "real" },
                ["perfectionism", "self-doubt"][i % 2],
                "job-interview",
                &text,
            )
        })
        .collect();
    let mut dup = judged(99, "real", "perfectionism", "job-interview", "a duplicate");
    dup["flags"] = json!([{"kind": "duplicate", "reason": "exact", "other_id": "real-0001"}]);
    records.push(dup);
    write_dataset(&ctx, "judged", &records);

    let run = ctx.run(&[
        "export",
        "judged",
        "--out",
        "exp",
        "--format",
        "trl,openai-dpo,sharegpt",
        "--taxonomy",
        &crate::util::repo_root()
            .join("examples/self-doubt/taxonomy.yaml")
            .display()
            .to_string(),
        "--license",
        "cc-by-4.0",
        "--source-license",
        "forum=CC-BY-SA-4.0",
        "--system-prompt",
        "Be kind.",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = &run.json()["export"];
    assert_eq!(summary["exported"], 60, "{summary}");
    assert_eq!(summary["excluded"]["duplicate"], 1, "{summary}");

    let trl = all_rows(&ctx.path("exp/trl"));
    assert_eq!(trl.len(), 60);
    assert_eq!(keys(&trl[0]), ["messages"]);
    assert_eq!(
        trl[0]["messages"][0],
        json!({"role": "system", "content": "Be kind."})
    );
    assert_eq!(
        trl[0]["messages"][2]["content"], "That sounds exhausting. What happened?",
        "judge.chosen picks the SFT response"
    );
    let dpo = all_rows(&ctx.path("exp/openai-dpo"));
    assert_eq!(
        keys(&dpo[0]),
        ["input", "non_preferred_output", "preferred_output"]
    );
    assert_eq!(
        dpo[0]["non_preferred_output"][0]["content"],
        "Just think positive!"
    );
    let sharegpt = all_rows(&ctx.path("exp/sharegpt"));
    assert_eq!(keys(&sharegpt[0]), ["conversations"]);
    assert!(
        !ctx.path("exp/openai").exists(),
        "only the formats asked for"
    );
    for split in ["train", "validation", "test"] {
        assert!(ctx.path(&format!("exp/trl/{split}.parquet")).exists());
    }

    let card = std::fs::read_to_string(ctx.path("exp/README.md")).unwrap();
    for needle in [
        "## Sources and mix",
        "## Counts per cell",
        "perfectionism × job-interview",
        "## Models used",
        "smollm2-135m",
        "## Filters and what they removed",
        "| duplicate | 1 |",
        "## Licenses",
        "CC-BY-SA-4.0",
        "## Known limits",
        "config_name: openai-dpo",
    ] {
        assert!(card.contains(needle), "card lacks {needle}:\n{card}");
    }

    // Bad flags: exit 2 with a hint.
    let run = ctx.run(&["export", "judged", "--out", "x", "--split", "0.8,0.2"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("hint:"), "{}", run.stderr);
    let run = ctx.run(&["export", "judged", "--out", "x", "--format", "alpaca"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("trl-preference"), "{}", run.stderr);
    let run = ctx.run(&["export", "missing", "--out", "x"]);
    assert_eq!(run.code, 2);
}
