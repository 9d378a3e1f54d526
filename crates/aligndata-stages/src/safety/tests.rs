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
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        // The line number only, never its text: this also loads the blind set.
        .map(|(i, l)| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}:{}: not a case: {e}", i + 1))
        })
        .collect()
}

/// Precision, recall and (kind, cases, flagged) rows of `det` on `cases`, printed. With
/// `show_texts`, each miss and false alarm is printed with its text and reason (never for the
/// blind set: only counts are printed there).
fn measure_with(
    det: &Detector<'_>,
    title: &str,
    cases: &[Case],
    show_texts: bool,
) -> (f64, f64, Vec<(&'static str, u32, u32)>) {
    let kinds: [&'static str; 4] = ["direct", "indirect", "lookalike", "distress"];
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let dets = det.detect_batch(&texts).unwrap_or_else(|e| panic!("{e:#}"));
    let mut rows = Vec::new();
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    let mut misses = Vec::new();
    for kind in kinds {
        let (mut n, mut flagged) = (0u32, 0u32);
        for (c, d) in cases.iter().zip(&dets).filter(|(c, _)| c.kind == kind) {
            n += 1;
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
    if show_texts {
        for m in &misses {
            println!("{m}");
        }
    }
    (precision, recall, rows)
}

/// Rules only, every miss printed.
fn measure(title: &str, cases: &[Case]) -> (f64, f64, Vec<(&'static str, u32, u32)>) {
    measure_with(&Detector::default(), title, cases, true)
}

fn minilm() -> Option<Box<dyn aligndata_models::embed::Embedder>> {
    match aligndata_models::embed::load_embedder(
        aligndata_models::embed::EmbedderKind::MiniLm,
        true,
        &|_| {},
    ) {
        Ok(e) => Some(e),
        Err(e) => {
            println!(
                "SKIPPED: MiniLM not installed ({e:#}); run `aligndata models install minilm-l6-v2`"
            );
            None
        }
    }
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

/// `heldout.jsonl` was written after the first rule set was frozen (which caught 1 of its 20
/// crisis inputs). The current rules and the classifier were then developed with it in view, so
/// it is a development set now, like `cases.jsonl`; the blind set below is the honest one.
/// Printed (rules only), not asserted here; see the next test for the asserted figures.
#[test]
fn detector_on_held_out_cases() {
    let cases = load("heldout.jsonl");
    assert!(cases.len() >= 30);
    let _ = measure("heldout.jsonl (rules only; seen while developing)", &cases);
}

/// Rules plus the shipped MiniLM classifier on the two development sets together (170 cases;
/// both seen while developing, so this guards against regressions, not over-fitting). Targets of
/// issue #6 (see `detector_meets_targets_on_labelled_cases` for why these), plus at most 3 of the
/// 44 look-alikes flagged. Skips without MiniLM.
#[test]
fn rules_and_classifier_meet_targets_on_dev_sets() {
    let Some(embedder) = minilm() else { return };
    let check = ClassifierCheck::new(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(
        check.model.embedder, "minilm-l6-v2",
        "the shipped model is used"
    );
    let det = Detector::with_classifier(check);
    let mut cases = load("cases.jsonl");
    cases.extend(load("heldout.jsonl"));
    let (precision, recall, rows) = measure_with(
        &det,
        "cases.jsonl + heldout.jsonl, rules + MiniLM classifier (development sets)",
        &cases,
        true,
    );
    let lookalike_flagged = rows.iter().find(|r| r.0 == "lookalike").map_or(0, |r| r.2);
    assert!(recall >= 0.95, "recall {recall:.3} < 0.95");
    assert!(precision >= 0.9, "precision {precision:.3} < 0.9");
    assert!(
        lookalike_flagged <= 3,
        "{lookalike_flagged} look-alikes flagged"
    );
}

/// The honest figures: `blind.jsonl`, 200 cases written by another author for this purpose and
/// never opened, printed or read while the detector was developed; only counts are printed here,
/// never a text, so that running this test does not leak the set into the next round of rules.
/// Run once on the frozen detector (see BENCHMARKS.md for the figures and the run history).
///
/// BLIND_THRESHOLDS (below) are the figures that run reached, minus a margin of about two cases
/// per class (0.02), so that the test fails on a real regression and not on a one-case wobble.
#[test]
fn detector_on_blind_set() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/safety/blind.jsonl");
    if !path.exists() {
        println!("SKIPPED: no blind.jsonl");
        return;
    }
    let cases = load("blind.jsonl");
    assert!(
        cases.len() >= 100,
        "the blind set holds {} cases",
        cases.len()
    );
    let rules = Detector::default();
    let (p_rules, r_rules, _) = measure_with(&rules, "blind.jsonl, rules only", &cases, false);
    let Some(embedder) = minilm() else { return };
    let check = ClassifierCheck::new(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
    let det = Detector::with_classifier(check);
    let (p, r, _) = measure_with(
        &det,
        "blind.jsonl, rules + MiniLM classifier",
        &cases,
        false,
    );
    let (min_p, min_r, min_p_rules, min_r_rules) = BLIND_THRESHOLDS;
    assert!(r >= min_r, "blind recall {r:.3} < {min_r}");
    assert!(p >= min_p, "blind precision {p:.3} < {min_p}");
    assert!(
        r_rules >= min_r_rules,
        "blind rules-only recall {r_rules:.3} < {min_r_rules}"
    );
    assert!(
        p_rules >= min_p_rules,
        "blind rules-only precision {p_rules:.3} < {min_p_rules}"
    );
}

/// (precision, recall) with the classifier, then (precision, recall) with rules only: the one
/// blind run on the frozen detector (2026-11-25, 04:52 UTC) reached 0.947 / 0.809 (tp 89, fp 5,
/// fn 21 of 110 crisis inputs; direct 43/50, indirect 46/60; look-alikes 4/60 and distress 1/30
/// flagged) and, rules only, 0.971 / 0.618; each minus 0.02 (about two cases), rounded down.
/// Recall is short of the 0.95 target: this test guards the level reached, it does not claim the
/// target.
const BLIND_THRESHOLDS: (f64, f64, f64, f64) = (0.92, 0.78, 0.95, 0.59);

/// Development aid: trains the classifier from `train.jsonl` now (not the shipped file) and
/// prints its figures on the dev sets with and without per-sentence scoring.
#[test]
#[ignore = "development aid; run with --ignored --nocapture"]
fn dev_train_and_measure_classifier() {
    measure("rules only: train.jsonl", &load("train.jsonl"));
    let Some(embedder) = minilm() else { return };
    let model = CrisisModel::train_builtin(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "trained on {}: threshold {:.3} weak {:.3}, cv precision {:.3} recall {:.3}",
        model.examples, model.threshold, model.weak_threshold, model.cv_precision, model.cv_recall
    );
    for per_sentence in [false, true] {
        let mut check = ClassifierCheck::with_model(embedder.as_ref(), model.clone());
        check.per_sentence = per_sentence;
        let det = Detector::with_classifier(check);
        for file in ["cases.jsonl", "heldout.jsonl"] {
            measure_with(
                &det,
                &format!("rules + classifier (per_sentence {per_sentence}): {file}"),
                &load(file),
                true,
            );
        }
    }
}

/// The shipped MiniLM model was trained on the current `train.jsonl`. After editing that file,
/// retrain and rewrite the model with
/// `UPDATE_SAFETY_MODEL=1 cargo test -p aligndata-stages --lib safety::tests::shipped`.
#[test]
fn shipped_minilm_model_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/safety/crisis-minilm.json");
    if std::env::var_os("UPDATE_SAFETY_MODEL").is_some() {
        let Some(embedder) = minilm() else {
            panic!("UPDATE_SAFETY_MODEL needs MiniLM installed")
        };
        let model =
            CrisisModel::train_builtin(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
        let json = serde_json::to_string(&model).unwrap_or_else(|e| panic!("{e}"));
        aligndata_dataset::write_atomic(&path, json.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
        println!("wrote {}", path.display());
        return;
    }
    let shipped: CrisisModel =
        serde_json::from_str(classifier::BUILTIN_MINILM).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        shipped.train_hash,
        classifier::train_hash(classifier::TRAIN_JSONL),
        "train.jsonl changed since crisis-minilm.json was trained; rerun this test with UPDATE_SAFETY_MODEL=1"
    );
    assert_eq!(shipped.embedder, "minilm-l6-v2");
    shipped.head.validate().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(shipped.weak_threshold <= shipped.threshold);
}
