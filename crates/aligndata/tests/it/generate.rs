//! `aligndata plan` and `aligndata generate` through the binary.

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
        if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("part-") && n.ends_with(".jsonl"))
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
fn plan_writes_quotas_covering_every_value() {
    let ctx = TestContext::new();
    let run = ctx.run(&[
        "plan",
        "--taxonomy",
        &taxonomy(),
        "--count",
        "120",
        "--out",
        "plan.json",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["total"], 120);
    assert_eq!(j["sampled"], true);
    assert_eq!(j["uncovered_values"].as_array().map(Vec::len), Some(0));
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.path("plan.json")).expect("plan")).expect("json");
    let sum: u64 = plan["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .map(|c| c["quota"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(sum, 120);
    let bad = ctx.run(&[
        "plan",
        "--taxonomy",
        &taxonomy(),
        "--count",
        "5",
        "--cell",
        "theme=nope=3",
        "--out",
        "p.json",
    ]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--cell"), "{}", bad.stderr);
}

#[test]
fn template_backend_generates_from_a_plan_deterministically() {
    let ctx = TestContext::new();
    let plan = ctx.run(&[
        "plan",
        "--taxonomy",
        &taxonomy(),
        "--count",
        "200",
        "--out",
        "plan.json",
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let mut outs = Vec::new();
    for dir in ["a", "b"] {
        let run = ctx.run(&[
            "generate",
            "--taxonomy",
            &taxonomy(),
            "--plan",
            "plan.json",
            "--backend",
            "template",
            "--embedder",
            "hashed",
            "--seed",
            "7",
            "--out",
            dir,
            "--json",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        let j = run.json();
        assert_eq!(j["generate"]["planned"], 200);
        assert!(
            j["generate"]["accepted"].as_u64().unwrap_or(0) >= 190,
            "{j}"
        );
        assert!(
            j["generate"]["diversity"]["overall"]["vendi"]
                .as_f64()
                .is_some()
        );
        outs.push(records(&ctx.path(dir)));
    }
    assert_eq!(outs[0], outs[1], "same seed, same records");
    let kept: Vec<&serde_json::Value> = outs[0]
        .iter()
        .filter(|r| r["flags"].as_array().is_none_or(Vec::is_empty))
        .collect();
    assert!(kept.len() >= 190);
    for r in kept {
        assert_eq!(r["source"], "synthetic");
        assert_eq!(r["intended"].as_object().map(|o| o.len()), Some(4));
        assert!(r["provenance"]["persona"].is_string());
        assert_eq!(r["provenance"]["seed"], 7);
    }
    let human = ctx.run(&[
        "generate",
        "--taxonomy",
        &taxonomy(),
        "--count",
        "20",
        "--backend",
        "template",
        "--embedder",
        "none",
        "--out",
        "c",
    ]);
    assert_eq!(human.code, 0, "{}", human.stderr);
    assert!(
        human.stderr.contains("quotas met") && human.stderr.contains("distinct-1/2/3"),
        "{}",
        human.stderr
    );
    let none = ctx.run(&[
        "generate",
        "--taxonomy",
        &taxonomy(),
        "--backend",
        "template",
        "--out",
        "d",
    ]);
    assert_eq!(none.code, 2);
    assert!(none.stderr.contains("--count"), "{}", none.stderr);
}

/// The in-process SmolLM2 end to end on a handful of inputs. Needs the installed default model
/// (`aligndata models install`); skips with a message when it is absent.
#[test]
fn local_backend_generates_a_handful() {
    let ctx = TestContext::new();
    let run = ctx.run(&[
        "generate",
        "--taxonomy",
        &taxonomy(),
        "--count",
        "2",
        "--backend",
        "local",
        "--max-tokens",
        "24",
        "--attempts",
        "1",
        "--embedder",
        "hashed",
        "--no-cache",
        "--offline",
        "--out",
        "local",
        "--json",
    ]);
    if run.code == 2 && run.stderr.contains("smollm2") {
        eprintln!(
            "SKIPPED local_backend_generates_a_handful: default model not installed\n{}",
            run.stderr
        );
        return;
    }
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["generate"]["planned"], 2);
    assert_eq!(j["generate"]["attempts"], 2);
    let recs = records(&ctx.path("local"));
    assert_eq!(
        recs.len() as u64,
        j["generate"]["records"].as_u64().unwrap_or(0)
    );
    for r in &recs {
        assert!(
            r["provenance"]["template"]
                .as_str()
                .is_some_and(|t| t.starts_with("continuation.j2#"))
        );
        assert!(r["provenance"]["prompt_hash"].is_string());
        assert!(r["provenance"]["model"].is_string());
    }
}

/// Issue #4: each accepted input is labelled and compared with the cell it was asked for;
/// `--reject-off-cell` sets aside the ones that miss, flagged with the reason.
#[test]
fn the_labeller_checks_each_input_against_its_cell() {
    let ctx = crate::util::TestContext::new();
    let taxonomy = crate::util::repo_root().join("examples/self-doubt/taxonomy.yaml");
    let taxonomy = taxonomy.to_str().unwrap();
    let args = [
        "generate",
        "--taxonomy",
        taxonomy,
        "--count",
        "30",
        "--backend",
        "template",
        "--embedder",
        "none",
        "--json",
        "-q",
    ];
    let run = ctx.run(&[&args[..], &["--out", "checked"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let agreement = run.json()["generate"]["agreement"].clone();
    for dimension in ["theme", "situation", "emotion", "risk"] {
        let checked = agreement[dimension]["checked"].as_u64().unwrap_or(0);
        assert!(
            checked > 0,
            "no agreement measured for {dimension}: {agreement}"
        );
    }

    let run = ctx.run(&[&args[..], &["--out", "strict", "--reject-off-cell"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = run.json()["generate"].clone();
    let off_cell = summary["rejected"]["off-cell"].as_u64().unwrap_or(0);
    assert!(off_cell > 0, "{summary}");
    let flagged = ctx.run(&["inspect", "strict", "-n", "0", "--flag", "off-cell"]);
    assert_eq!(
        flagged.stdout.lines().count() as u64,
        off_cell,
        "every rejected attempt is kept, flagged"
    );

    let run = ctx.run(&[&args[..], &["--out", "unchecked", "--check", "none"]].concat());
    assert_eq!(
        run.json()["generate"]["agreement"]
            .as_object()
            .map(|m| m.len())
            .unwrap_or(0),
        0
    );
}

/// Issue #4: killed half-way (SIGKILL, no chance to clean up) and rerun with the same
/// arguments, `generate` keeps every attempt the first run logged, unchanged, and generates only
/// the remainder. The run is made long enough to kill honestly: a large plan, in small batches.
#[test]
fn killed_mid_run_resumes_without_regenerating_accepted_inputs() {
    use std::collections::HashMap;
    use std::time::{Duration, Instant};

    const COUNT: u64 = 30_000;
    let ctx = TestContext::new();
    let plan = ctx.run(&[
        "plan",
        "--taxonomy",
        &taxonomy(),
        "--count",
        &COUNT.to_string(),
        "--out",
        "plan.json",
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let args = [
        "generate",
        "--taxonomy",
        &taxonomy(),
        "--plan",
        "plan.json",
        "--backend",
        "template",
        "--check",
        "none",
        "--embedder",
        "none",
        "--batch",
        "500",
        "--seed",
        "3",
        "--out",
        "synthetic",
        "--json",
        "-q",
    ];
    let log_path = ctx.path(".synthetic.generate-work/checkpoint.jsonl");
    let lines = || {
        std::fs::read(&log_path)
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .unwrap_or(0)
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_aligndata"))
        .args(args)
        .current_dir(ctx.path(""))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let t0 = Instant::now();
    // Header + at least four batches logged.
    while lines() < 1 + 4 * 500 {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "generate logged nothing"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "generate ended before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    assert!(
        !ctx.path("synthetic").join("manifest.json").exists(),
        "killed before the dataset was finished"
    );
    // What the log holds after the kill: whole lines only (a torn last line is not a decision).
    let text = std::fs::read_to_string(&log_path).expect("log");
    let logged: Vec<serde_json::Value> = text
        .split_inclusive('\n')
        .skip(1)
        .filter(|l| l.ends_with('\n'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("entry")["r"].clone())
        .collect();
    let is_kept = |r: &serde_json::Value| r["flags"].as_array().is_none_or(Vec::is_empty);
    let logged_accepted: Vec<&serde_json::Value> = logged.iter().filter(|r| is_kept(r)).collect();
    assert!(logged.len() >= 2000 && (logged.len() as u64) < COUNT);

    let run = ctx.run(&args);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = run.json()["generate"].clone();
    assert_eq!(s["accepted"], COUNT);
    assert_eq!(s["resumed_attempts"], logged.len() as u64);
    assert_eq!(s["resumed_accepted"], logged_accepted.len() as u64);
    let new_attempts = s["attempts"].as_u64().unwrap_or(0) - logged.len() as u64;
    assert!(new_attempts >= COUNT - logged_accepted.len() as u64);

    let recs = records(&ctx.path("synthetic"));
    assert_eq!(recs.len() as u64, s["records"].as_u64().unwrap_or(0));
    assert_eq!(
        &recs[..logged.len()],
        &logged[..],
        "logged attempts kept unchanged"
    );
    let kept: Vec<&serde_json::Value> = recs.iter().filter(|r| is_kept(r)).collect();
    assert_eq!(kept.len() as u64, COUNT, "exactly the quota");
    let by_id: HashMap<&str, &serde_json::Value> = kept
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or(""), *r))
        .collect();
    assert_eq!(by_id.len(), kept.len(), "no accepted input twice");
    // No attempt was made twice: (cell, attempt number) is unique over the whole dataset, so
    // the rerun carried on where the log ended instead of generating the logged ones again.
    let mut attempts = std::collections::HashSet::new();
    for r in &recs {
        let key = (
            r["intended"].to_string(),
            r["provenance"]["attempt"].as_u64(),
        );
        assert!(attempts.insert(key), "attempt made twice: {r}");
    }
    for r in &logged_accepted {
        assert_eq!(by_id.get(r["id"].as_str().unwrap_or("")), Some(r));
    }
    // Every cell holds exactly its quota.
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.path("plan.json")).expect("plan")).expect("json");
    let mut per_cell: HashMap<String, u64> = HashMap::new();
    for r in &kept {
        let intended = r["intended"].as_object().expect("intended");
        let mut key: Vec<String> = intended
            .iter()
            .map(|(d, v)| format!("{d}={}", v.as_str().unwrap_or("")))
            .collect();
        key.sort();
        *per_cell.entry(key.join("|")).or_default() += 1;
    }
    for c in plan["cells"].as_array().expect("cells") {
        let mut key: Vec<String> = c["cell"]
            .as_str()
            .unwrap_or("")
            .split('|')
            .map(String::from)
            .collect();
        key.sort();
        assert_eq!(
            per_cell.get(&key.join("|")).copied().unwrap_or(0),
            c["quota"].as_u64().unwrap_or(0),
            "{key:?}"
        );
    }
    assert!(
        !ctx.path(".synthetic.generate-work").exists(),
        "the resume log goes once the dataset is in place"
    );
}
