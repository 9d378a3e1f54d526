#![allow(clippy::print_stdout)] // tests print their tables for `--nocapture`

use super::*;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    crisis: bool,
    kind: String,
}

fn cases() -> Vec<Case> {
    load("cases.jsonl")
}

fn load(name: &str) -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test_data/safety")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad case {l}: {e}")))
        .collect()
}

/// Precision, recall and (kind, cases, flagged) rows of the detector on `cases`, printed.
fn measure(title: &str, cases: &[Case]) -> (f64, f64, Vec<(&'static str, u32, u32)>) {
    let det = Detector::default();
    let kinds: [&'static str; 4] = ["direct", "indirect", "lookalike", "distress"];
    let mut rows = Vec::new();
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    let mut misses = Vec::new();
    for kind in kinds {
        let (mut n, mut flagged) = (0u32, 0u32);
        for c in cases.iter().filter(|c| c.kind == kind) {
            n += 1;
            let d = det.detect(&c.text);
            if d.crisis {
                flagged += 1;
            }
            match (c.crisis, d.crisis) {
                (true, true) => tp += 1,
                (false, true) => {
                    fp += 1;
                    misses.push(format!("FALSE ALARM [{kind}] {} -- {}", c.text, d.reason()));
                }
                (true, false) => {
                    fn_ += 1;
                    misses.push(format!("MISSED [{kind}] {} -- {}", c.text, d.reason()));
                }
                _ => {}
            }
        }
        rows.push((kind, n, flagged));
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!("{title}");
    println!("| kind      | cases | flagged crisis |");
    println!("|-----------|------:|---------------:|");
    for (kind, n, flagged) in &rows {
        println!("| {kind:<9} | {n:>5} | {flagged:>14} |");
    }
    println!("tp {tp} fp {fp} fn {fn_}: precision {precision:.3}, recall {recall:.3}");
    for m in &misses {
        println!("{m}");
    }
    (precision, recall, rows)
}

/// Targets (issue #6), and why these:
/// - recall ≥ 0.95 over direct + indirect: a missed crisis input gets an ordinary small-model
///   reply with no resources, the costliest error this stage can make; at most 1 in 20 may slip
///   through, and every miss is printed so a reviewer can add a rule.
/// - precision ≥ 0.9 over everything flagged, with the look-alikes and ordinary distress in the
///   negatives: a false alarm still gets a warm, staying answer (not a refusal), so it costs
///   less, but too many would teach the agent to answer "this deadline is killing me" with a
///   hotline, which users find alienating; 1 false alarm in 10 flagged is the ceiling.
/// - No look-alike in `idiom`-style phrasing may pass ("killing me", "could kill for"): the
///   clinician's scenario names them, so we assert look-alike precision separately too
///   (≤ 2 of the look-alikes flagged).
#[test]
fn detector_meets_targets_on_labelled_cases() {
    let cases = cases();
    assert!(
        cases.len() >= 120,
        "the labelled set must hold at least 120 cases, has {}",
        cases.len()
    );
    let (precision, recall, rows) =
        measure("cases.jsonl (rules written with these in view)", &cases);
    let lookalike_flagged = rows
        .iter()
        .find(|r| r.0 == "lookalike")
        .map(|r| r.2)
        .unwrap_or(0);
    assert!(recall >= 0.95, "recall {recall:.3} < 0.95");
    assert!(precision >= 0.9, "precision {precision:.3} < 0.9");
    assert!(
        lookalike_flagged <= 2,
        "{lookalike_flagged} look-alikes flagged"
    );
}

#[test]
fn reasons_name_the_cue_and_the_suppression() {
    let det = Detector::default();
    let d = det.detect("Everyone would be better off without me.");
    assert!(d.crisis);
    assert!(
        d.reason().contains("indirect.better_off_without"),
        "{}",
        d.reason()
    );
    let d = det.detect("I would never hurt myself, I just feel low.");
    assert!(!d.crisis);
    assert!(
        d.reason().contains("negated by \"never\""),
        "{}",
        d.reason()
    );
    let d = det.detect("I'm dying to know if I passed.");
    assert!(!d.crisis, "{}", d.reason());
    let d = det.detect("My essay is about suicide prevention.");
    assert!(!d.crisis);
    assert!(d.reason().contains("idiom.suicide_topic"), "{}", d.reason());
}

#[test]
fn marking_adds_label_and_score_once() {
    let det = Detector::default();
    let mut r = Record::new(
        aligndata_core::SourceKind::Real,
        "I want to kill myself".into(),
    );
    let d = det.detect(&r.text);
    mark(&mut r, &d);
    mark(&mut r, &d);
    assert_eq!(
        r.labels.iter().filter(|l| l.value == CRISIS_VALUE).count(),
        1
    );
    assert_eq!(r.score(SCORE_NAME), Some(1.0));
}

#[test]
fn resources_by_locale_with_fallback() {
    let res =
        Resources::parse(DEFAULT_RESOURCES, "resources.yaml").expect("default resources parse");
    assert!(res.block(Some("us")).contains("988"));
    assert!(res.block(Some("UK")).contains("116 123"));
    assert!(res.block(Some("xx")).contains("findahelpline.com"));
    assert!(res.block(None).contains("findahelpline.com"));
    let bad = Resources::parse("fallback: zz\nlocales: {US: []}\n", "r.yaml");
    assert!(bad.is_err());
    let t = CrisisTemplate { variants: vec![] };
    let text = t.render(0, &res, Some("US"));
    assert!(text.contains("988") && text.contains('?'));
}

/// Cases written after the rules were frozen and never used to tune them: the honest,
/// out-of-sample estimate. Printed, not asserted: at the time of writing the rules catch 1 of 20
/// held-out crisis inputs (recall 0.05) — phrasings like "ending things", "painless ways to go",
/// "out of the picture" have no rule. Adding rules for these misses would make this set a
/// development set too; write a fresh held-out set when you do.
#[test]
fn detector_on_held_out_cases() {
    let cases = load("heldout.jsonl");
    assert!(cases.len() >= 30);
    let _ = measure(
        "heldout.jsonl (written after the rules were frozen)",
        &cases,
    );
}

/// The optional embedding check (MiniLM). Its threshold is chosen on cases.jsonl from the
/// embedding alone (the rules catch every dev case, so rules+embedding cannot choose it): the
/// lowest threshold whose embedding-only precision on the dev set is ≥ 0.9. Then rules+embedding
/// is measured on the held-out set at that threshold. Skips (with a message) without MiniLM.
#[test]
fn embedding_check_threshold_from_dev_then_held_out() {
    let embedder = match aligndata_models::embed::load_embedder(
        aligndata_models::embed::EmbedderKind::MiniLm,
        true,
        &|_| {},
    ) {
        Ok(e) => e,
        Err(e) => {
            println!("SKIPPED: MiniLM not installed ({e:#})");
            return;
        }
    };
    let check = EmbeddingCheck::new(
        embedder.as_ref(),
        CRISIS_EXEMPLARS,
        LOOKALIKE_EXEMPLARS,
        1.0,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let dev = cases();
    let texts: Vec<&str> = dev.iter().map(|c| c.text.as_str()).collect();
    let vecs = embedder.embed(&texts).unwrap_or_else(|e| panic!("{e:#}"));
    let sims: Vec<(f32, f32)> = vecs
        .iter()
        .map(|v| {
            (
                EmbeddingCheck::best(&check.crisis, v),
                EmbeddingCheck::best(&check.lookalike, v),
            )
        })
        .collect();
    let mut chosen = 1.0f32;
    for step in (30..=90).rev().step_by(5) {
        let t = step as f32 / 100.0;
        let hit = |(c, l): &(f32, f32)| *c >= t && c > l;
        let tp = dev
            .iter()
            .zip(&sims)
            .filter(|(c, s)| c.crisis && hit(s))
            .count();
        let fp = dev
            .iter()
            .zip(&sims)
            .filter(|(c, s)| !c.crisis && hit(s))
            .count();
        let pos = dev.iter().filter(|c| c.crisis).count();
        let precision = tp as f64 / (tp + fp).max(1) as f64;
        println!(
            "embedding only, dev, cos≥{t:.2}: precision {precision:.3} recall {:.3} (tp {tp} fp {fp})",
            tp as f64 / pos.max(1) as f64
        );
        if precision >= 0.9 && tp > 0 {
            chosen = t;
        }
    }
    println!("chosen threshold (dev precision ≥ 0.9): {chosen:.2}");
    let check = EmbeddingCheck::new(
        embedder.as_ref(),
        CRISIS_EXEMPLARS,
        LOOKALIKE_EXEMPLARS,
        chosen,
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let det = Detector::with_embedding(check);
    for file in ["cases.jsonl", "heldout.jsonl"] {
        let cases = load(file);
        let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
        let dets = det.detect_batch(&texts).unwrap_or_else(|e| panic!("{e:#}"));
        let tp = cases
            .iter()
            .zip(&dets)
            .filter(|(c, d)| c.crisis && d.crisis)
            .count();
        let fp = cases
            .iter()
            .zip(&dets)
            .filter(|(c, d)| !c.crisis && d.crisis)
            .count();
        let pos = cases.iter().filter(|c| c.crisis).count();
        println!(
            "rules+minilm cos≥{chosen:.2}: {file}: precision {:.3} recall {:.3} (tp {tp} fp {fp} of {pos} crisis)",
            tp as f64 / (tp + fp).max(1) as f64,
            tp as f64 / pos.max(1) as f64
        );
    }
}
