//! `--shard I/N`: N shard runs of ingest and label hold exactly the records of one unsharded run
//! (same ids, texts, flags, labels); dedup per shard plus a merge run finds as many duplicates.

use std::collections::BTreeMap;
use std::path::Path;

use crate::util::{TestContext, read_jsonl};

const TAXONOMY: &str = "
name: t
dimensions:
  - id: topic
    values:
      - id: work
        description: my job, my boss, my colleagues, a deadline at the office
      - id: school
        description: exams, homework, my teacher, grades at school
";

/// Records of a dataset directory, by id (ids are unique per text, and texts are distinct
/// except for planted exact copies, which carry the same id and the same fields).
fn by_id(dir: &Path) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut parts: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    parts.sort();
    let mut out: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for p in parts {
        for r in read_jsonl(&p) {
            out.entry(r["id"].as_str().unwrap().to_string())
                .or_default()
                .push(r);
        }
    }
    out
}

fn merged(ctx: &TestContext, prefix: &str, n: usize) -> BTreeMap<String, Vec<serde_json::Value>> {
    let mut all: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for i in 0..n {
        for (id, mut rs) in by_id(&ctx.path(&format!("{prefix}{i}"))) {
            all.entry(id).or_default().append(&mut rs);
        }
    }
    all
}

fn quarantined(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("quarantine.jsonl"))
        .map(|s| s.lines().filter(|l| !l.trim().is_empty()).count())
        .unwrap_or(0)
}

#[test]
fn shards_of_ingest_label_and_dedup_merge_into_the_unsharded_result() {
    let ctx = TestContext::new();
    // Distinct texts (eight words drawn per row, so no two are near duplicates), two topics.
    const WORDS: [&str; 40] = [
        "deadline",
        "boss",
        "meeting",
        "office",
        "report",
        "colleague",
        "salary",
        "project",
        "client",
        "shift",
        "exam",
        "teacher",
        "homework",
        "grades",
        "essay",
        "class",
        "lecture",
        "quiz",
        "campus",
        "tutor",
        "tired",
        "anxious",
        "stuck",
        "behind",
        "nervous",
        "ashamed",
        "confused",
        "angry",
        "lonely",
        "restless",
        "monday",
        "friday",
        "tonight",
        "morning",
        "weekend",
        "again",
        "still",
        "always",
        "never",
        "lately",
    ];
    let mut state = 12345u64;
    let mut lines = String::new();
    for i in 0..90 {
        let topic = if i % 2 == 0 { "at work" } else { "at school" };
        let words: Vec<&str> = (0..8)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                WORDS[(state >> 33) as usize % WORDS.len()]
            })
            .collect();
        let text = format!("Things {topic} feel heavy: {} (row {i})", words.join(" "));
        lines.push_str(&serde_json::json!({ "text": text, "id": format!("src-{i}") }).to_string());
        lines.push('\n');
        if i % 10 == 0 {
            // An exact copy (same id) and a case-changed copy (another id, maybe another shard).
            lines.push_str(&serde_json::json!({ "text": text }).to_string());
            lines.push('\n');
            lines.push_str(&serde_json::json!({ "text": text.to_uppercase() }).to_string());
            lines.push('\n');
        }
    }
    lines.push_str("{\"text\": broken json\n");
    ctx.write("posts.jsonl", lines.as_bytes());
    ctx.write("t.yaml", TAXONOMY.as_bytes());
    let ok = |args: &[&str]| {
        let run = ctx.run(args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    };
    let n = 3;
    let shards: Vec<String> = (0..n).map(|i| format!("{i}/{n}")).collect();

    // Ingest: raw rows split by file and line.
    ok(&["ingest", "posts.jsonl", "--id-field", "id", "--out", "all"]);
    for (i, s) in shards.iter().enumerate() {
        ok(&[
            "ingest",
            "posts.jsonl",
            "--id-field",
            "id",
            "--shard",
            s,
            "--out",
            &format!("in{i}"),
        ]);
    }
    let whole = by_id(&ctx.path("all"));
    let parts = merged(&ctx, "in", n);
    assert_eq!(whole.values().map(Vec::len).sum::<usize>(), 90 + 18);
    let sizes: Vec<usize> = (0..n)
        .map(|i| by_id(&ctx.path(&format!("in{i}"))).len())
        .collect();
    assert!(
        sizes.iter().all(|&s| s > 0),
        "every shard gets work: {sizes:?}"
    );
    let strip = |m: &BTreeMap<String, Vec<serde_json::Value>>| -> BTreeMap<String, Vec<String>> {
        m.iter()
            .map(|(id, rs)| {
                let mut v: Vec<String> = rs
                    .iter()
                    .map(|r| format!("{}|{}|{}", r["text"], r["flags"], r["provenance"]["line"]))
                    .collect();
                v.sort();
                (id.clone(), v)
            })
            .collect()
    };
    assert_eq!(strip(&whole), strip(&parts));
    let q: usize = (0..n)
        .map(|i| quarantined(&ctx.path(&format!("in{i}"))))
        .sum();
    assert_eq!(q, quarantined(&ctx.path("all")));
    assert_eq!(q, 1);

    // Label: records split by id; every record labelled as in the unsharded run.
    let label = |input: &str, out: &str, shard: Option<&str>| {
        let mut args = vec![
            "label",
            input,
            "--taxonomy",
            "t.yaml",
            "--embedder",
            "hashed",
            "--out",
            out,
        ];
        if let Some(s) = shard {
            args.extend(["--shard", s]);
        }
        ok(&args);
    };
    label("all", "lab", None);
    for (i, s) in shards.iter().enumerate() {
        label("all", &format!("lab{i}"), Some(s));
    }
    let labels = |m: &BTreeMap<String, Vec<serde_json::Value>>| -> BTreeMap<String, Vec<String>> {
        m.iter()
            .map(|(id, rs)| {
                (
                    id.clone(),
                    rs.iter().map(|r| r["labels"].to_string()).collect(),
                )
            })
            .collect()
    };
    let whole = by_id(&ctx.path("lab"));
    assert_eq!(labels(&whole), labels(&merged(&ctx, "lab", n)));
    assert!(
        whole
            .values()
            .flatten()
            .any(|r| r["labels"].as_array().is_some_and(|l| !l.is_empty())),
        "the labeller labelled something"
    );
    // Each id lives in exactly one shard.
    for id in whole.keys() {
        let owners = (0..n)
            .filter(|i| by_id(&ctx.path(&format!("lab{i}"))).contains_key(id))
            .count();
        assert_eq!(owners, 1, "{id}");
    }

    // Dedup: within each shard, then across shards by a merge run.
    ok(&["dedup", "lab", "--out", "dd"]);
    for (i, s) in shards.iter().enumerate() {
        ok(&["dedup", "lab", "--shard", s, "--out", &format!("dd{i}")]);
    }
    let dd: Vec<String> = (0..n).map(|i| format!("dd{i}")).collect();
    let mut args = vec!["dedup"];
    args.extend(dd.iter().map(String::as_str));
    args.extend(["--out", "merged"]);
    ok(&args);
    let dups = |m: &BTreeMap<String, Vec<serde_json::Value>>| {
        m.values()
            .flatten()
            .filter(|r| {
                r["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f["kind"] == "duplicate"))
            })
            .count()
    };
    let single = dups(&by_id(&ctx.path("dd")));
    assert!(single >= 18, "9 exact and 9 case-changed copies: {single}");
    assert_eq!(dups(&by_id(&ctx.path("merged"))), single);
    let within: usize = (0..n)
        .map(|i| dups(&by_id(&ctx.path(&format!("dd{i}")))))
        .sum();
    assert!(
        within >= 9,
        "exact copies share an id, hence a shard: {within}"
    );
    // No temporary shard copies are left beside the outputs.
    let leftovers: Vec<_> = std::fs::read_dir(ctx.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".shard-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
