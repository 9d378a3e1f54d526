//! `aligndata report` renders in a real browser: headless Chromium (Debian's `chromium`
//! package; `scripts/test.sh` installs it) loads the page with no console errors, its script runs,
//! and a screenshot is saved for a human to look at.

use std::path::Path;
use std::process::Command;

use crate::export::{judged, write_dataset};
use crate::util::{TestContext, repo_root};

const CHROMIUM: &str = "/usr/bin/chromium";

fn chromium(profile: &Path, extra: &[&str], url: &str) -> std::process::Output {
    Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(url)
        .output()
        .expect("run chromium")
}

#[test]
fn report_renders_in_headless_chromium_without_console_errors() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install Debian's chromium package (`apt-get install -y chromium`; scripts/test.sh does it)"
    );
    let ctx = TestContext::new();
    let themes = ["perfectionism", "self-doubt", "fear-of-failure"];
    let situations = ["job-interview", "giving-a-presentation", "exams-and-study"];
    let records: Vec<_> = (0..150)
        .map(|i| {
            let (t, s) = (themes[i % 3], situations[(i / 3) % 3]);
            if i % 2 == 0 {
                judged(
                    i,
                    "synthetic",
                    t,
                    s,
                    &format!(
                        "I am feeling {t} about the {s} and I would like some support, message {i}."
                    ),
                )
            } else {
                judged(
                    i,
                    "real",
                    t,
                    s,
                    &format!("ok so the {s} thing tmrw... {i} reasons i'll blow it tbh"),
                )
            }
        })
        .collect();
    write_dataset(&ctx, "pool", &records);
    let taxonomy = repo_root().join("examples/self-doubt/taxonomy.yaml");
    let run = ctx.run(&[
        "report",
        "pool",
        "--taxonomy",
        &taxonomy.display().to_string(),
        "--out",
        "rep",
        "--embedder",
        "hashed",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = ctx.path("rep/report.html");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ctx.path("rep/report.json")).unwrap()).unwrap();
    assert_eq!(json["records"], 150);
    assert_eq!(json["dimensions"][0], "theme", "taxonomy order");
    assert!(
        json["gap"]["auc"].as_f64().unwrap() > 0.8,
        "{}",
        json["gap"]
    );
    let size = std::fs::metadata(&html).unwrap().len();
    assert!(
        size < 2_000_000,
        "page stays small enough to open at once: {size} bytes"
    );

    let url = format!("file://{}", html.display());
    let profile = ctx.path("chromium-profile");
    // The DOM after scripts ran: the script marks the body, and the heatmaps and map are there.
    let dom = chromium(&profile, &["--dump-dom"], &url);
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom_text.contains("data-ready=\"yes\""),
        "the page's script ran:\n{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    assert!(
        dom_text.contains("class=\"hm on\""),
        "one heatmap tab is shown"
    );
    assert!(dom_text.contains("id=\"map\""));

    // A screenshot, with the console on stderr: no uncaught errors, no console errors.
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let out = chromium(
        &profile,
        &[
            "--enable-logging=stderr",
            "--v=0",
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2000",
        ],
        &url,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let console: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught"))
        .collect();
    assert!(
        console.is_empty(),
        "console output from the page: {console:#?}"
    );
    let png = std::fs::read(&shot)
        .unwrap_or_else(|e| panic!("no screenshot at {} ({e}): {stderr}", shot.display()));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "a real screenshot"
    );
    eprintln!("report screenshot: {}", shot.display());
}
