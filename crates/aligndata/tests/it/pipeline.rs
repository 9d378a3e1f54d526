//! `aligndata run`: a pipeline file end to end, and a rerun that skips unchanged steps.

use crate::util::TestContext;

#[test]
fn rerun_skips_unchanged_ingest_and_reruns_after_a_change() {
    let ctx = TestContext::new();
    let taxonomy = crate::util::repo_root().join("examples/self-doubt/taxonomy.yaml");
    ctx.write("in.jsonl", b"{\"text\": \"I doubt every line I write\"}\n");
    let pipeline = format!(
        "name: t\ntaxonomy: {}\nout: out\nsteps:\n  - ingest:\n      inputs: [in.jsonl]\n",
        taxonomy.display()
    );
    ctx.write("p.yaml", pipeline.as_bytes());
    let first = ctx.run(&["run", "p.yaml", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(first.json()["steps"][0]["status"], "ran");
    let second = ctx.run(&["run", "p.yaml", "--json"]);
    assert_eq!(second.json()["steps"][0]["status"], "unchanged");
    ctx.write(
        "in.jsonl",
        b"{\"text\": \"I doubt every line I write\"}\n{\"text\": \"and every word\"}\n",
    );
    let third = ctx.run(&["run", "p.yaml", "--json"]);
    assert_eq!(third.json()["steps"][0]["status"], "ran");
    assert_eq!(third.json()["steps"][0]["summary"]["records"], 2);
}

#[test]
fn pipeline_with_a_typo_names_file_line_and_field() {
    let ctx = TestContext::new();
    ctx.write("p.yaml", b"name: t\ntaxonomy: t.yaml\nsteps:\n  - ingest:\n      inputs: [a]\n      txt_field: body\n");
    let run = ctx.run(&["run", "p.yaml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("p.yaml:"), "{}", run.stderr);
    assert!(run.stderr.contains("txt_field"), "{}", run.stderr);
}

/// Steps other than ingest run their subcommand with the step's settings as flags; `from`
/// wires outputs to inputs; a rerun keeps every unchanged step and redoes what changed.
#[test]
fn generate_and_dedup_steps_chain_and_rerun_only_what_changed() {
    let ctx = TestContext::new();
    let taxonomy = crate::util::repo_root().join("examples/self-doubt/taxonomy.yaml");
    ctx.write(
        "real.jsonl",
        b"{\"text\": \"I rehearse my talk every night and still freeze\"}\n",
    );
    let pipeline = |count: u32| {
        format!(
            "name: t\ntaxonomy: {}\nout: out\nsteps:\n  - generate:\n      name: synthetic\n      backend: template\n      count: {count}\n      seed: 3\n  - ingest:\n      inputs: [real.jsonl]\n  - ingest:\n      name: absent\n      inputs: [missing.jsonl]\n      optional: true\n  - dedup:\n      from: [synthetic, real, absent]\n",
            taxonomy.display()
        )
    };
    ctx.write("p.yaml", pipeline(20).as_bytes());
    let first = ctx.run(&["run", "p.yaml", "--json"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let steps = first.json()["steps"].clone();
    let statuses: Vec<&str> = steps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ran", "ran", "skipped-missing-input", "ran"]);
    let stats = ctx.run(&["stats", "out/dedup", "--json"]);
    let by_source = stats.json()["by_source"].clone();
    assert_eq!(by_source["real"], 1);
    assert!(
        by_source["synthetic"].as_u64().unwrap() >= 20,
        "{by_source}"
    );

    let second = ctx.run(&["run", "p.yaml", "--json"]);
    let statuses: Vec<String> = second.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        [
            "unchanged",
            "unchanged",
            "skipped-missing-input",
            "unchanged"
        ]
    );

    ctx.write("p.yaml", pipeline(24).as_bytes());
    let third = ctx.run(&["run", "p.yaml", "--json"]);
    let statuses: Vec<String> = third.json()["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        statuses,
        ["ran", "unchanged", "skipped-missing-input", "ran"],
        "a changed generate step reruns dedup too"
    );
}

#[test]
fn a_step_setting_that_is_not_a_flag_is_named() {
    let ctx = TestContext::new();
    let taxonomy = crate::util::repo_root().join("examples/self-doubt/taxonomy.yaml");
    let pipeline = format!(
        "name: t\ntaxonomy: {}\nsteps:\n  - generate:\n      backend: template\n      cuont: 3\n",
        taxonomy.display()
    );
    ctx.write("p.yaml", pipeline.as_bytes());
    let run = ctx.run(&["run", "p.yaml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--cuont"), "{}", run.stderr);
    assert!(
        run.stderr.contains("aligndata generate --help"),
        "{}",
        run.stderr
    );
}
