//! The command-line contract: help, `--json`, exit codes, unbuilt commands.

use crate::util::TestContext;

#[test]
fn help_explains_the_flow_and_lists_every_stage() {
    let ctx = TestContext::new();
    let run = ctx.run(&["--help"]);
    assert_eq!(run.code, 0);
    for cmd in [
        "taxonomy", "ingest", "generate", "label", "dedup", "select", "respond", "judge", "export",
        "report", "run", "serve", "models", "inspect", "stats",
    ] {
        assert!(
            run.stdout.contains(cmd),
            "--help does not list `{cmd}`:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout.contains("quarantine"),
        "--help should explain set-aside rows"
    );
}

#[test]
fn missing_dataset_is_one_clear_error() {
    let ctx = TestContext::new();
    let run = ctx.run(&["stats", "no-such-dir"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("no-such-dir"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}
