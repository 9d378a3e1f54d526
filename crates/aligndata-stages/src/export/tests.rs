//! Export: exact field names per format (JSONL and Parquet columns), splits that keep
//! near-duplicates together and cell shares close to the ratios, and a card that lists filters.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use aligndata_core::{Flag, Label, Record, Response, Score, SourceKind};
use aligndata_dataset::{DatasetWriter, ManifestFields, WriterOptions};

use super::*;

fn record(text: &str, theme: &str, situation: &str, judged: bool) -> Record {
    let mut r = Record::new(SourceKind::Real, text.to_string());
    r.provenance.file = Some("forum.jsonl".into());
    r.labels.push(Label {
        dimension: "theme".into(),
        value: theme.into(),
        confidence: 0.9,
        method: "test".into(),
    });
    r.intended.insert("situation".into(), situation.into());
    for (i, model) in ["m-a", "m-b"].iter().enumerate() {
        r.responses.push(Response {
            text: format!("response {i} to: {text}"),
            model: model.to_string(),
            strategy: "explore".into(),
            scores: vec![Score {
                name: JUDGE_TOTAL.into(),
                value: 1.0 - i as f64,
                reason: String::new(),
            }],
        });
    }
    if judged {
        r.set_score(JUDGE_CHOSEN, 1.0, String::new());
        r.set_score(JUDGE_REJECTED, 0.0, String::new());
    }
    r
}

fn write_dataset(dir: &Path, records: &[Record]) {
    let mut w = DatasetWriter::create(dir, WriterOptions::default()).unwrap();
    for r in records {
        w.push(r).unwrap();
    }
    w.finish(ManifestFields {
        stage: "judge".into(),
        ..Default::default()
    })
    .unwrap();
}

fn read_jsonl(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

/// Distinct texts that do not look alike: words drawn by a small LCG, so no MinHash link.
fn text(i: usize) -> String {
    const WORDS: [&str; 40] = [
        "deadline",
        "manager",
        "sister",
        "exam",
        "party",
        "interview",
        "report",
        "coach",
        "lunch",
        "rent",
        "moving",
        "team",
        "garden",
        "violin",
        "thesis",
        "neighbour",
        "promotion",
        "wedding",
        "driving",
        "swimming",
        "recipe",
        "holiday",
        "budget",
        "laptop",
        "brother",
        "teacher",
        "marathon",
        "podcast",
        "kitchen",
        "tournament",
        "painting",
        "landlord",
        "mortgage",
        "hospital",
        "festival",
        "bicycle",
        "chemistry",
        "orchestra",
        "startup",
        "camping",
    ];
    let mut x = (i as u64)
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut words = Vec::new();
    for _ in 0..10 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        words.push(WORDS[((x >> 33) % 40) as usize]);
    }
    format!("{i} {}", words.join(" "))
}

#[test]
fn every_format_has_exactly_the_documented_fields() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("judged");
    let mut records: Vec<Record> = (0..40)
        .map(|i| record(&text(i), "perfectionism", "work", i % 2 == 0))
        .collect();
    let mut flagged = record("a flagged duplicate", "perfectionism", "work", true);
    flagged.flags.push(Flag {
        kind: "duplicate".into(),
        reason: "near".into(),
        other_id: Some(records[0].id.clone()),
    });
    records.push(flagged);
    let mut bare = Record::new(SourceKind::Synthetic, "no response yet".into());
    bare.provenance.model = Some("smollm2".into());
    records.push(bare);
    write_dataset(&input, &records);

    let out = tmp.path().join("export");
    let config = ExportConfig {
        system_prompt: Some("You are a supportive listener.".into()),
        license: Some("cc-by-4.0".into()),
        source_licenses: vec![("forum".into(), "CC-BY-SA-4.0".into())],
        ..ExportConfig::default()
    };
    let summary = export(&[input], &out, &config, &|_| {}).unwrap();
    assert_eq!(summary.records, 42);
    assert_eq!(summary.exported, 40);
    assert_eq!(summary.excluded.get("duplicate"), Some(&1));
    assert_eq!(summary.excluded.get("no_response"), Some(&1));
    assert_eq!(summary.preference_pairs, 20);

    let expected: BTreeMap<&str, Vec<&str>> = [
        ("openai", vec!["messages"]),
        ("trl", vec!["messages"]),
        ("trl-prompt-completion", vec!["completion", "prompt"]),
        ("sharegpt", vec!["conversations"]),
        ("trl-preference", vec!["chosen", "prompt", "rejected"]),
        (
            "openai-dpo",
            vec!["input", "non_preferred_output", "preferred_output"],
        ),
        ("trl-unpaired", vec!["completion", "label", "prompt"]),
    ]
    .into_iter()
    .collect();
    for (format, fields) in &expected {
        let rows: Vec<serde_json::Value> = SPLIT_NAMES
            .iter()
            .flat_map(|s| read_jsonl(&out.join(format).join(format!("{s}.jsonl"))))
            .collect();
        assert!(!rows.is_empty(), "{format} has rows");
        for row in &rows {
            assert_eq!(keys(row), *fields, "{format}: {row}");
        }
    }
    let openai = read_jsonl(&out.join("openai/train.jsonl"));
    let msgs = openai[0]["messages"].as_array().unwrap();
    assert_eq!(
        msgs.iter()
            .map(|m| m["role"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["system", "user", "assistant"]
    );
    assert_eq!(keys(&msgs[0]), ["content", "role"]);
    let sharegpt = read_jsonl(&out.join("sharegpt/train.jsonl"));
    let turns = sharegpt[0]["conversations"].as_array().unwrap();
    assert_eq!(
        turns
            .iter()
            .map(|t| t["from"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["system", "human", "gpt"]
    );
    assert_eq!(keys(&turns[1]), ["from", "value"]);
    let dpo: Vec<_> = SPLIT_NAMES
        .iter()
        .flat_map(|s| read_jsonl(&out.join(format!("openai-dpo/{s}.jsonl"))))
        .collect();
    assert_eq!(dpo.len(), 20);
    assert_eq!(keys(&dpo[0]["input"]), ["messages"]);
    assert_eq!(dpo[0]["preferred_output"][0]["role"], "assistant");
    assert!(
        dpo[0]["preferred_output"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("response 1"),
        "judge.chosen = 1"
    );
    assert!(
        dpo[0]["non_preferred_output"][0]["content"]
            .as_str()
            .unwrap()
            .starts_with("response 0")
    );
    let kto: Vec<_> = SPLIT_NAMES
        .iter()
        .flat_map(|s| read_jsonl(&out.join(format!("trl-unpaired/{s}.jsonl"))))
        .collect();
    assert_eq!(kto.iter().filter(|r| r["label"] == true).count(), 20);
    assert_eq!(kto.iter().filter(|r| r["label"] == false).count(), 20);
    // Unjudged records use the first response.
    let sft: Vec<_> = SPLIT_NAMES
        .iter()
        .flat_map(|s| read_jsonl(&out.join(format!("trl/{s}.jsonl"))))
        .collect();
    assert_eq!(sft.len(), 40);
    assert_eq!(
        sft.iter()
            .filter(|r| r["messages"][2]["content"]
                .as_str()
                .unwrap()
                .starts_with("response 0"))
            .count(),
        20
    );

    // Parquet: the same top-level columns, read by pyarrow (as HF `datasets` does).
    let script = r#"
import sys, json, pyarrow.parquet as pq
out = {}
for fmt in sys.argv[2:]:
    t = pq.read_table(f"{sys.argv[1]}/{fmt}/train.parquet")
    out[fmt] = [sorted(t.column_names), t.num_rows, t.to_pylist()[0] if t.num_rows else None]
print(json.dumps(out))
"#;
    let mut args = vec![
        "-c".to_string(),
        script.to_string(),
        out.display().to_string(),
    ];
    args.extend(expected.keys().map(|s| s.to_string()));
    match std::process::Command::new("python3").args(&args).output() {
        Ok(o) if o.status.success() => {
            let got: HashMap<String, serde_json::Value> =
                serde_json::from_slice(&o.stdout).unwrap();
            for (format, fields) in &expected {
                assert_eq!(
                    got[*format][0],
                    serde_json::json!(fields),
                    "{format} parquet columns"
                );
                let jsonl = read_jsonl(&out.join(format).join("train.jsonl"));
                assert_eq!(got[*format][1], jsonl.len(), "{format} parquet rows");
                assert_eq!(
                    got[*format][2], jsonl[0],
                    "{format}: parquet row = jsonl row"
                );
            }
        }
        Ok(o) => panic!(
            "pyarrow could not read the export: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("python3 with pyarrow is needed (scripts/test.sh installs it): {e}"),
    }

    // The card names the filters and their counts, the models and the licenses.
    let card = std::fs::read_to_string(out.join("README.md")).unwrap();
    assert!(card.contains("| duplicate | 1 |"), "{card}");
    assert!(card.contains("no_response"), "{card}");
    assert!(
        card.contains("response: m-a") && card.contains("response: m-b"),
        "{card}"
    );
    assert!(card.contains("license: \"cc-by-4.0\""), "{card}");
    assert!(card.contains("CC-BY-SA-4.0"), "{card}");
    assert!(card.contains("config_name: trl-preference"), "{card}");
    assert!(card.contains("path: openai-dpo/test.parquet"), "{card}");
    assert!(card.contains("## Known limits"), "{card}");
    assert!(card.contains("| work × perfectionism | "), "{card}");
}

#[test]
fn near_duplicates_never_cross_splits_and_cells_keep_their_shares() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("judged");
    // Three cells of 300, 150 and 50 records.
    let mut records = Vec::new();
    for i in 0..500 {
        let (theme, situation) = match i % 10 {
            0..=5 => ("perfectionism", "work"),
            6..=8 => ("self-doubt", "exams"),
            _ => ("procrastination", "family"),
        };
        records.push(record(&text(i), theme, situation, false));
    }
    // Planted near-duplicates: 40 pairs (one word changed) and one triple.
    let mut planted = Vec::new();
    for k in 0..40 {
        let base = &records[k * 12].text.clone();
        let twin = format!("{base}!!");
        let twin = twin.replacen("keep me awake", "keeps me awake", 1);
        planted.push((
            records[k * 12].id.clone(),
            Record::new(SourceKind::Real, twin.clone()).id,
        ));
        let mut r = record(&twin, "perfectionism", "work", false);
        r.provenance.file = Some("forum.jsonl".into());
        records.push(r);
    }
    write_dataset(&input, &records);
    let out = tmp.path().join("export");
    let summary = export(&[input], &out, &ExportConfig::default(), &|_| {}).unwrap();
    assert_eq!(summary.exported, 540);
    assert!(
        summary.duplicate_groups >= 40,
        "{}",
        summary.duplicate_groups
    );

    let splits: HashMap<String, String> = read_jsonl(&out.join("splits.jsonl"))
        .into_iter()
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["split"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (a, b) in &planted {
        assert_eq!(
            splits[a], splits[b],
            "near-duplicates {a} and {b} sit in one split"
        );
    }

    // Global shares near 80/10/10 and each cell's shares near its global ones.
    let total = summary.exported as f64;
    let shares: Vec<f64> = SPLIT_NAMES
        .iter()
        .map(|s| summary.splits[*s] as f64 / total)
        .collect();
    assert!(
        (shares[0] - 0.8).abs() < 0.03
            && (shares[1] - 0.1).abs() < 0.03
            && (shares[2] - 0.1).abs() < 0.03,
        "{shares:?}"
    );
    for (cell, n) in &summary.cells {
        let cell_total: u64 = n.iter().sum();
        for s in 0..3 {
            let share = n[s] as f64 / cell_total as f64;
            assert!(
                (share - [0.8, 0.1, 0.1][s]).abs() < 0.05,
                "{cell}: split {s} share {share} of {n:?}"
            );
        }
    }
}

#[test]
fn assignment_does_not_depend_on_input_order() {
    let items: Vec<SplitItem> = (0..200)
        .map(|i| SplitItem {
            id: format!("id{i}"),
            text: text(i),
            stratum: format!("c{}", i % 7),
            duplicate_of: vec![],
        })
        .collect();
    let a = assign_splits(&items, [0.8, 0.1, 0.1], 0.7, 3).unwrap();
    let mut reversed = items.clone();
    reversed.reverse();
    let b = assign_splits(&reversed, [0.8, 0.1, 0.1], 0.7, 3).unwrap();
    let mut b_assign = b.assignment.clone();
    b_assign.reverse();
    assert_eq!(a.assignment, b_assign);
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let config = ExportConfig {
        ratios: [0.0, 0.5, 0.5],
        ..ExportConfig::default()
    };
    assert!(config.validate().is_err());
    assert!("nope".parse::<ExportFormat>().is_err());
    assert_eq!(
        "trl-preference".parse::<ExportFormat>().unwrap(),
        ExportFormat::TrlPreference
    );
    let tmp = tempfile::tempdir().unwrap();
    let err = export(
        &[tmp.path().join("missing")],
        &tmp.path().join("o"),
        &ExportConfig::default(),
        &|_| {},
    );
    assert!(err.is_err());
}
