//! `aligndata serve bench` as a short behaviour check (not a timing): two client processes, a
//! few seconds of load, one kill -9 of the server; the tool itself checks the store, and this
//! test checks what it reports. The figures it prints are not asserted (the machine is shared).

use serde_json::Value;

use crate::util::TestContext;

fn bench(store: &str, extra: &[&str]) -> Value {
    let ctx = TestContext::new();
    let dir = ctx.path("bench");
    let dir = dir.to_str().expect("utf-8 temp path");
    let mut args = vec![
        "serve",
        "bench",
        "--store",
        store,
        "--seconds",
        "4",
        "--clients",
        "2",
        "--concurrency",
        "4",
        "--dir",
        dir,
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = ctx.run(&args);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    let out = run.json();
    let result = out["results"][0].clone();
    eprintln!("{store}: {result}");
    result
}

fn assert_nothing_lost_or_duplicated(result: &Value) {
    assert_eq!(
        result["kills"], 1,
        "the server must have been killed once: {result}"
    );
    for field in ["lost", "duplicated", "phantom", "rejected"] {
        assert_eq!(result[field], 0, "{field} must be 0: {result}");
    }
    let acked = result["feedback_acked"].as_u64().unwrap_or(0);
    let turns = result["turns_acked"].as_u64().unwrap_or(0);
    assert!(acked > 0 && turns > 0, "no events acknowledged: {result}");
    // Four feedback events per turn; a turn cut off by the deadline may have fewer.
    assert!(
        acked <= 4 * turns,
        "more feedback than the turns carry: {result}"
    );
}

#[test]
fn sqlite_bench_loses_and_duplicates_nothing_across_kill_9() {
    assert_nothing_lost_or_duplicated(&bench("sqlite", &[]));
}

#[test]
fn postgres_bench_loses_and_duplicates_nothing_across_kill_9() {
    match std::env::var("ALIGNDATA_TEST_PG_URL") {
        Ok(url) => assert_nothing_lost_or_duplicated(&bench("postgres", &["--pg-url", &url])),
        Err(_) => eprintln!(
            "skipped: set ALIGNDATA_TEST_PG_URL to run the PostgreSQL bench test (scripts/test.sh does)"
        ),
    }
}
