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
    ctx.write("in.jsonl", b"{\"text\": \"I doubt every line I write\"}\n{\"text\": \"and every word\"}\n");
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
