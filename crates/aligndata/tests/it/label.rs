//! `aligndata label` and `aligndata label train` through the binary.

use crate::util::{TestContext, repo_root};

fn taxonomy() -> String {
    repo_root()
        .join("examples/self-doubt/taxonomy.yaml")
        .display()
        .to_string()
}

fn records(dir: &std::path::Path) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dataset dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "jsonl")
            && path.file_name().is_some_and(|n| n != "quarantine.jsonl")
        {
            let text = std::fs::read_to_string(&path).expect("shard");
            out.extend(
                text.lines()
                    .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json line")),
            );
        }
    }
    out
}

#[test]
fn train_on_synthetic_then_label_with_model_and_prototypes() {
    let ctx = TestContext::new();
    let tax = taxonomy();
    let generated = ctx.run(&[
        "generate",
        "--taxonomy",
        &tax,
        "--count",
        "300",
        "--backend",
        "template",
        "--embedder",
        "hashed",
        "--out",
        "syn",
        "-q",
    ]);
    assert_eq!(generated.code, 0, "{}", generated.stderr);

    let train = ctx.run(&[
        "label",
        "train",
        "syn",
        "--taxonomy",
        &tax,
        "--embedder",
        "hashed",
        "--out",
        "model.json",
        "--json",
    ]);
    assert_eq!(train.code, 0, "{}", train.stderr);
    let j = train.json();
    assert!(
        j["label_train"]["examples"].as_u64().unwrap_or(0) > 100,
        "{j}"
    );
    assert!(ctx.path("model.json").exists());

    let run = ctx.run(&[
        "label",
        "syn",
        "--taxonomy",
        &tax,
        "--model",
        "model.json",
        "--out",
        "labelled",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["label"]["method"], "trained");
    let n = j["label"]["records"].as_u64().unwrap_or(0);
    assert!(n > 100, "{j}");
    let recs = records(&ctx.path("labelled"));
    assert_eq!(recs.len() as u64, n);
    assert!(recs.iter().any(|r| {
        r["labels"]
            .as_array()
            .is_some_and(|l| l.iter().any(|x| x["method"] == "trained"))
    }));
    assert!(
        j["label"]["intended_agreement"].as_f64().unwrap_or(0.0) > 0.3,
        "{j}"
    );

    // Prototype on the output keeps the trained labels and adds its own.
    let run = ctx.run(&[
        "label",
        "labelled",
        "--taxonomy",
        &tax,
        "--embedder",
        "hashed",
        "--out",
        "both",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("method prototype") && run.stderr.contains("none"),
        "{}",
        run.stderr
    );
    let recs = records(&ctx.path("both"));
    let methods: std::collections::BTreeSet<String> = recs
        .iter()
        .flat_map(|r| r["labels"].as_array().cloned().unwrap_or_default())
        .filter_map(|l| l["method"].as_str().map(str::to_string))
        .collect();
    assert!(
        methods.contains("trained") && methods.contains("prototype"),
        "{methods:?}"
    );
}

#[test]
fn train_from_a_jsonl_file_with_a_label_map() {
    let ctx = TestContext::new();
    let tax = taxonomy();
    let mut lines = String::new();
    for i in 0..40 {
        lines.push_str(&format!("{{\"text\":\"my job interview number {i} with the recruiter went badly\",\"y\":\"work\"}}\n"));
        lines.push_str(&format!(
            "{{\"text\":\"exam {i} revision and my grades this semester\",\"y\":\"school\"}}\n"
        ));
    }
    ctx.write("l.jsonl", lines.as_bytes());
    ctx.write(
        "map.yaml",
        b"work: situation=job-interview\nschool: [situation=exams-and-study]\n",
    );
    let run = ctx.run(&[
        "label",
        "train",
        "l.jsonl",
        "--taxonomy",
        &tax,
        "--label-field",
        "y",
        "--label-map",
        "map.yaml",
        "--embedder",
        "hashed",
        "--out",
        "m.json",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["label_train"]["examples"], 80);
}

#[test]
fn label_errors_name_the_problem() {
    let ctx = TestContext::new();
    let tax = taxonomy();
    let generated = ctx.run(&[
        "generate",
        "--taxonomy",
        &tax,
        "--count",
        "20",
        "--backend",
        "template",
        "--embedder",
        "hashed",
        "--out",
        "syn",
        "-q",
    ]);
    assert_eq!(generated.code, 0, "{}", generated.stderr);
    let missing = ctx.run(&[
        "label",
        "syn",
        "--taxonomy",
        &tax,
        "--model",
        "nope.json",
        "--out",
        "o",
    ]);
    assert_eq!(missing.code, 2);
    assert!(missing.stderr.contains("nope.json"), "{}", missing.stderr);
    ctx.write("bad.json", b"{\"format\": 1}");
    let bad = ctx.run(&[
        "label",
        "syn",
        "--taxonomy",
        &tax,
        "--model",
        "bad.json",
        "--out",
        "o",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("not a label model"), "{}", bad.stderr);
    ctx.write("l.jsonl", b"{\"text\":\"a\"}\n");
    let no_field = ctx.run(&[
        "label",
        "train",
        "l.jsonl",
        "--taxonomy",
        &tax,
        "--embedder",
        "hashed",
        "--out",
        "m.json",
    ]);
    assert_eq!(no_field.code, 2);
    assert!(
        no_field.stderr.contains("--label-field"),
        "{}",
        no_field.stderr
    );
    let method = ctx.run(&[
        "label",
        "syn",
        "--taxonomy",
        &tax,
        "--method",
        "magic",
        "--out",
        "o",
    ]);
    assert_eq!(method.code, 2);
    let usage = ctx.run(&["label", "syn", "--out", "o"]);
    assert_eq!(usage.code, 2, "{}", usage.stderr);
}
