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
/// `show_texts`, each miss and false alarm is printed with its text and reason (the spent blind
/// set's too, now that it is training data; a fresh blind set is only counted).
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

/// MiniLM with the shipped crisis adapter ([`crisis_embedder`]), or `None` (and a SKIPPED
/// line) when MiniLM is not installed.
fn minilm() -> Option<Box<dyn aligndata_models::embed::Embedder>> {
    match crisis_embedder(true, &|_| {}) {
        Ok(e) => Some(Box::new(e)),
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

/// How the three thresholds decide, on the shipped model's values: a strong cue stands unless
/// the classifier is nearly sure it is not a crisis (and the reason says so); a weak cue needs
/// the classifier's confirmation; the classifier alone needs the solo threshold.
#[test]
fn thresholds_decide_strong_weak_and_solo() {
    let m: CrisisModel =
        serde_json::from_str(classifier::BUILTIN_MINILM).unwrap_or_else(|e| panic!("{e}"));
    assert!(0.0 < m.strong_threshold && m.strong_threshold <= m.threshold);
    let det = Detector::default();
    let strong = "I'm going to kill myself tonight.";
    assert!(det.decide(strong, m.strong_threshold, &m).crisis);
    let d = det.decide(strong, m.strong_threshold / 2.0, &m);
    assert!(!d.crisis);
    assert!(
        d.reason().contains("direct.kill_self") && d.reason().contains("classifier p"),
        "{}",
        d.reason()
    );
    let weak = "I am such a burden to everyone.";
    let d = det.decide(weak, m.weak_threshold, &m);
    assert!(d.crisis, "{}", d.reason());
    assert!(!det.decide(weak, m.weak_threshold / 2.0, &m).crisis);
    let none = "I had a long week at work and I feel low.";
    assert!(det.decide(none, m.threshold, &m).crisis);
    assert!(!det.decide(none, m.threshold - 0.01, &m).crisis);
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
        check.model.embedder, "minilm-l6-v2+crisis-lora",
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

/// `blind.jsonl`: 200 cases written by another author and run once on the frozen detector of
/// 2026-11-25 (0.947 / 0.809, BENCHMARKS.md). That run SPENT it: its misses were then read, new
/// rule families were written for them and its cases were copied into `train.jsonl`. So these
/// figures are now training figures (a regression guard, every miss printed), not an estimate of
/// generalisation; the next blind set is that.
///
/// BLIND_THRESHOLDS (below) are the figures reached now, minus a margin of about two cases per
/// class (0.02), so that the test fails on a real regression and not on a one-case wobble.
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
    let (p, r, _) = measure_with(&det, "blind.jsonl, rules + MiniLM classifier", &cases, true);
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

/// `calibration.jsonl` is the second blind set (260 cases: 60 direct, 90 indirect, 75
/// look-alike, 35 distress), spent as a test on 2026-12-04 (precision 0.893, recall 0.887,
/// BENCHMARKS.md) and since then the set the thresholds are chosen on. The shipped model records
/// the whole detector's figures there; this checks that detection really gives them (same
/// features, same sentence scoring, same rules) and that they reach the precision target.
#[test]
fn shipped_thresholds_give_the_recorded_calibration_figures() {
    let Some(embedder) = minilm() else { return };
    let check = ClassifierCheck::new(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
    let recorded = check
        .model
        .calibration
        .clone()
        .unwrap_or_else(|| panic!("the shipped model was not calibrated"));
    let det = Detector::with_classifier(check);
    let cases = load("calibration.jsonl");
    assert_eq!(cases.len(), recorded.cases);
    let (p, r, _) = measure_with(&det, "calibration.jsonl, shipped detector", &cases, false);
    assert!(
        (p - f64::from(recorded.precision)).abs() < 1e-6,
        "{p} vs {recorded:?}"
    );
    assert!(
        (r - f64::from(recorded.recall)).abs() < 1e-6,
        "{r} vs {recorded:?}"
    );
    assert!(p >= 0.9, "calibrated precision {p:.3} < 0.9");
}

/// `blind6.jsonl`: 320 cases (60 direct, 100 indirect, 100 look-alike, 60 distress) written on
/// 2026-12-04 by an author who saw neither the detector nor any earlier set, and run once on the
/// frozen detector of the fifth round (MiniLM fine-tuned with the shipped LoRA adapter). Earlier
/// fresh sets, each run once on the detector of its round and then spent (read, guards written
/// for its false alarms, joined to `calibration.jsonl`): blind3 0.813 / 0.981, blind4
/// 0.767 / 0.988, blind5 0.798 / 0.963 (precision / recall), all with a linear head on frozen
/// MiniLM. Only counts are ever printed for this set, never a text, so that running this test
/// does not leak it into the next round. Its figures (BENCHMARKS.md) are the honest estimate of
/// generalisation.
///
/// BLIND6_THRESHOLDS (below) are the figures that one run reached, minus about two cases per
/// class (0.02), so that the test fails on a real regression and not on a one-case wobble.
#[test]
fn detector_on_fresh_blind_set() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/safety/blind6.jsonl");
    if !path.exists() {
        println!("SKIPPED: no blind6.jsonl");
        return;
    }
    let cases = load("blind6.jsonl");
    assert!(
        cases.len() >= 300,
        "the blind set holds {} cases",
        cases.len()
    );
    let rules = Detector::default();
    let (p_rules, r_rules, _) = measure_with(&rules, "blind6.jsonl, rules only", &cases, false);
    let Some(embedder) = minilm() else { return };
    let check = ClassifierCheck::new(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
    let det = Detector::with_classifier(check);
    let (p, r, _) = measure_with(
        &det,
        "blind6.jsonl, rules + fine-tuned MiniLM classifier",
        &cases,
        false,
    );
    let (min_p, min_r, min_p_rules, min_r_rules) = BLIND6_THRESHOLDS;
    assert!(r >= min_r, "blind6 recall {r:.3} < {min_r}");
    assert!(p >= min_p, "blind6 precision {p:.3} < {min_p}");
    assert!(
        r_rules >= min_r_rules,
        "blind6 rules-only recall {r_rules:.3} < {min_r_rules}"
    );
    assert!(
        p_rules >= min_p_rules,
        "blind6 rules-only precision {p_rules:.3} < {min_p_rules}"
    );
}

/// `real_counselchat.jsonl`: the first 240 distinct questions of CounselChat
/// (`shared/data/counsel-chat`, MIT: real people writing to therapists), labelled crisis or not
/// (26 crisis) by a reader who saw neither the detector nor its data, with a few words of why
/// each. Not hand-written look-alikes but the text the tool will meet: heavy, ordinary distress
/// (depression, panic, self-loathing), where the base rate of crisis is low. Measured after
/// blind6, nothing tuned on it. The detector is far less precise here than on the hand-written
/// sets: it flags about 1 in 4 of these questions and two of every three flags are ordinary
/// distress (the classifier alone at p 0.5–0.8, and cues such as "urge to throw away all my
/// stuff" learned as giving things away). REAL_THRESHOLDS records the level reached, minus a
/// case, so that the next round can only improve it; `CRISIS_SHOW=1` prints each error.
#[test]
fn detector_on_real_counselchat_questions() {
    let cases = load("real_counselchat.jsonl");
    assert_eq!(cases.len(), 240);
    let Some(embedder) = minilm() else { return };
    let check = ClassifierCheck::new(embedder.as_ref()).unwrap_or_else(|e| panic!("{e:#}"));
    let det = Detector::with_classifier(check);
    let texts: Vec<&str> = cases.iter().map(|c| c.text.as_str()).collect();
    let dets = det.detect_batch(&texts).unwrap_or_else(|e| panic!("{e:#}"));
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for (c, d) in cases.iter().zip(&dets) {
        match (c.crisis, d.crisis) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            _ => {}
        }
        if c.crisis != d.crisis && std::env::var_os("CRISIS_SHOW").is_some() {
            let what = if c.crisis { "MISSED" } else { "FALSE ALARM" };
            println!("{what} [{}] {} -- {}", c.kind, c.text, d.reason());
        }
    }
    let precision = f64::from(tp) / f64::from((tp + fp).max(1));
    let recall = f64::from(tp) / f64::from((tp + fn_).max(1));
    println!(
        "real_counselchat.jsonl, rules + fine-tuned classifier: tp {tp} fp {fp} fn {fn_}: precision {precision:.3}, recall {recall:.3}"
    );
    let (min_p, min_r) = REAL_THRESHOLDS;
    assert!(
        precision >= min_p,
        "real precision {precision:.3} < {min_p}"
    );
    assert!(recall >= min_r, "real recall {recall:.3} < {min_r}");
}

/// (precision, recall) on `real_counselchat.jsonl`: 0.365 / 0.885 (tp 23, fp 40, fn 3) at
/// 2c0117c's detector (the round-4 detector, a linear head on frozen MiniLM: 0.362 / 0.962;
/// rules only: 0.700 / 0.538), minus about a case each.
const REAL_THRESHOLDS: (f64, f64) = (0.35, 0.84);

/// (precision, recall) with the classifier, then rules only. The one run (2026-12-04 14:21 UTC,
/// detector frozen at commit 2c0117c) reached 0.945 / 0.975 (tp 156, fp 9, fn 4; direct 60/60,
/// indirect 96/100; look-alikes 8/100 and distress 1/60 flagged) and, rules only,
/// 0.876 / 0.575; each minus about 0.02, rounded down. Both targets (recall 0.95, precision
/// 0.9) are met on this fresh set; the recall bound is the target itself.
const BLIND6_THRESHOLDS: (f64, f64, f64, f64) = (0.92, 0.95, 0.85, 0.55);

/// (precision, recall) with the classifier, then (precision, recall) with rules only. The one
/// blind run (2026-11-25) reached 0.947 / 0.809 and, rules only, 0.971 / 0.618. Then, before its
/// misses were read, new training examples and rule families written without it reached
/// 0.915 / 0.882 on it (direct 45/50, indirect 52/60, look-alikes 6/60 and distress 3/30 flagged):
/// the last honest figure. Now, with it in the training file and rules written for its misses:
/// 1.000 / 0.982 (tp 108, fp 0, fn 2) and, rules only, 1.000 / 0.791. After the second round
/// (thresholds calibrated lower, on `calibration.jsonl`, for recall): 0.932 / 0.991 (tp 109,
/// fp 8, fn 1); rules only unchanged. Each minus 0.02.
const BLIND_THRESHOLDS: (f64, f64, f64, f64) = (0.91, 0.97, 0.98, 0.77);

/// Precision and recall of `det` deciding each (text, probability, truth) under `m`.
fn scored_figures(det: &Detector<'_>, m: &CrisisModel, rows: &[(&str, f32, bool)]) -> (f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0u32, 0u32, 0u32);
    for (t, p, truth) in rows {
        match (det.decide(t, *p, m).crisis, *truth) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            _ => {}
        }
    }
    (
        f64::from(tp) / f64::from((tp + fp).max(1)),
        f64::from(tp) / f64::from((tp + fn_).max(1)),
    )
}

/// The shipped MiniLM model was trained on the current `train.jsonl`. After editing that file,
/// retrain and rewrite the adapter and the model with
/// `UPDATE_SAFETY_ADAPTER=1 UPDATE_SAFETY_MODEL=1 cargo test -p aligndata-stages --lib
/// safety::tests::shipped` (the adapter takes about five minutes on two cores; without
/// `UPDATE_SAFETY_ADAPTER` only the head and thresholds are refitted, on the adapter in the tree).
#[test]
fn shipped_minilm_model_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/safety/crisis-minilm.json");
    if std::env::var_os("UPDATE_SAFETY_MODEL").is_some() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/safety");
        let mut parts: Vec<Box<dyn aligndata_models::embed::Embedder>> = Vec::new();
        for (i, opts) in ADAPTERS.iter().enumerate() {
            let adapter_path = dir.join(format!("crisis-lora-{i}.safetensors"));
            if std::env::var_os("UPDATE_SAFETY_ADAPTER").is_some() {
                let examples = classifier::parse_examples(classifier::TRAIN_JSONL, "train")
                    .unwrap_or_else(|e| panic!("{e:#}"));
                let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
                let labels: Vec<bool> = examples.iter().map(|e| e.crisis).collect();
                let adapter = aligndata_models::embed::lora::train(
                    &minilm_base(),
                    &texts,
                    &labels,
                    *opts,
                    &|s, n, l| {
                        if s % 50 == 0 {
                            println!("adapter {i}: step {s}/{n}, loss {l:.3}");
                        }
                    },
                )
                .unwrap_or_else(|e| panic!("{e:#}"));
                let bytes = adapter.to_bytes().unwrap_or_else(|e| panic!("{e:#}"));
                aligndata_dataset::write_atomic(&adapter_path, &bytes)
                    .unwrap_or_else(|e| panic!("{e:#}"));
                println!("wrote {}", adapter_path.display());
            }
            // The adapter from the file, not the one built in: it may have just been rewritten.
            let bytes = std::fs::read(&adapter_path).unwrap_or_else(|e| panic!("{e}"));
            let adapter = aligndata_models::embed::lora::Adapter::from_bytes(&bytes, "adapter")
                .unwrap_or_else(|e| panic!("{e:#}"));
            let mut part = minilm_base();
            part.apply_adapter(&adapter, &format!("crisis-lora-{i}"))
                .unwrap_or_else(|e| panic!("{e:#}"));
            parts.push(Box::new(part));
        }
        let embedder = aligndata_models::embed::ConcatEmbedder::new(CRISIS_ENCODER, parts)
            .unwrap_or_else(|e| panic!("{e:#}"));
        let model = CrisisModel::train_builtin(&embedder).unwrap_or_else(|e| panic!("{e:#}"));
        let json = serde_json::to_string(&model).unwrap_or_else(|e| panic!("{e}"));
        aligndata_dataset::write_atomic(&path, json.as_bytes()).unwrap_or_else(|e| panic!("{e:#}"));
        println!("wrote {}", path.display());
        return;
    }
    let shipped: CrisisModel =
        serde_json::from_str(classifier::BUILTIN_MINILM).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        shipped.train_hash,
        classifier::builtin_hash(),
        "train.jsonl, calibration.jsonl or the fitting settings changed since crisis-minilm.json was trained; rerun this test with UPDATE_SAFETY_MODEL=1"
    );
    assert_eq!(shipped.embedder, "minilm-l6-v2+crisis-lora");
    shipped.head.validate().unwrap_or_else(|e| panic!("{e:#}"));
    assert!(shipped.weak_threshold <= shipped.threshold);
}

fn minilm_base() -> aligndata_models::embed::MiniLmEmbedder {
    let dir = aligndata_models::registry::ensure(
        aligndata_models::embed::minilm::MODEL_NAME,
        true,
        &|_| {},
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    aligndata_models::embed::MiniLmEmbedder::load(&dir).unwrap_or_else(|e| panic!("{e:#}"))
}

/// Development aid: fine-tunes MiniLM with LoRA on `train.jsonl` (plus `CRISIS_EXTRA_TRAIN`)
/// and writes the adapter to `CRISIS_LORA_OUT`. Options from `CRISIS_LORA` as
/// `rank,alpha,first_layer,epochs,lr,batch`.
#[test]
#[ignore = "development aid; run with --ignored --nocapture"]
fn dev_train_lora() {
    let Ok(out) = std::env::var("CRISIS_LORA_OUT") else {
        println!("SKIPPED: set CRISIS_LORA_OUT");
        return;
    };
    let mut train_text = classifier::TRAIN_JSONL.to_string();
    for extra in std::env::var("CRISIS_EXTRA_TRAIN")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        train_text.push_str(&std::fs::read_to_string(extra).unwrap_or_else(|e| panic!("{e}")));
        if !train_text.ends_with('\n') {
            train_text.push('\n');
        }
    }
    let examples =
        classifier::parse_examples(&train_text, "train").unwrap_or_else(|e| panic!("{e:#}"));
    let mut opts = ADAPTERS[0];
    if let Ok(spec) = std::env::var("CRISIS_LORA") {
        let v: Vec<&str> = spec.split(',').collect();
        opts.rank = v[0].parse().unwrap();
        opts.alpha = v[1].parse().unwrap();
        opts.first_layer = v[2].parse().unwrap();
        opts.epochs = v[3].parse().unwrap();
        opts.lr = v[4].parse().unwrap();
        opts.batch = v[5].parse().unwrap();
        if let Some(seed) = v.get(6) {
            opts.seed = seed.parse().unwrap();
        }
    }
    let base = minilm_base();
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let labels: Vec<bool> = examples.iter().map(|e| e.crisis).collect();
    let t0 = std::time::Instant::now();
    let adapter = aligndata_models::embed::lora::train(&base, &texts, &labels, opts, &|s, n, l| {
        if s % 20 == 0 || s == n {
            println!(
                "step {s}/{n} loss {l:.4} ({:.0} s)",
                t0.elapsed().as_secs_f32()
            );
        }
    })
    .unwrap_or_else(|e| panic!("{e:#}"));
    std::fs::write(&out, adapter.to_bytes().unwrap()).unwrap();
    println!(
        "{opts:?}: wrote {out} in {:.0} s",
        t0.elapsed().as_secs_f32()
    );
}

/// Development aid for choosing the classifier's features: trains on `train.jsonl` (plus the
/// files in `CRISIS_EXTRA_TRAIN`, comma-separated paths) with each feature set in
/// `CRISIS_FEATURES` (comma-separated: `default`, `none`, `DIM:WEIGHT` hashed n-grams joined to
/// MiniLM; `CRISIS_L2`, `CRISIS_STANDARDISE=0|1`), optionally calibrates on `CRISIS_CALIBRATE`,
/// and prints the whole detector's figures on `CRISIS_EVAL` (a path; default the calibration
/// set; `CRISIS_GRID` adds a grid of thresholds, `CRISIS_SHOW` every error). Never point it at a fresh blind set: that is measured once, by
/// `detector_on_fresh_blind_set`, after the detector is frozen.
#[test]
#[ignore = "development aid; run with --ignored --nocapture"]
fn dev_compare_classifier_features() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/safety");
    let mut train_text = classifier::TRAIN_JSONL.to_string();
    for extra in std::env::var("CRISIS_EXTRA_TRAIN")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
    {
        let t = std::fs::read_to_string(extra).unwrap_or_else(|e| panic!("{extra}: {e}"));
        train_text.push_str(&t);
        if !train_text.ends_with('\n') {
            train_text.push('\n');
        }
    }
    let examples =
        classifier::parse_examples(&train_text, "train").unwrap_or_else(|e| panic!("{e:#}"));
    let eval_path = std::env::var("CRISIS_EVAL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| dir.join("calibration.jsonl"));
    let eval_text = std::fs::read_to_string(&eval_path).unwrap_or_else(|e| panic!("{e}"));
    let eval = classifier::parse_examples(&eval_text, "eval").unwrap_or_else(|e| panic!("{e:#}"));
    println!(
        "train {} examples, eval {} ({})",
        examples.len(),
        eval.len(),
        eval_path.display()
    );
    let Some(embedder) = minilm() else { return };
    // CRISIS_ADAPTER: LoRA adapters (from `dev_train_lora`, comma-separated paths), each merged
    // into its own MiniLM, side by side; `p_head` in the dump is the first one's own head.
    let adapters: Vec<aligndata_models::embed::lora::Adapter> = std::env::var("CRISIS_ADAPTER")
        .unwrap_or_default()
        .split(',')
        .filter(|p| !p.is_empty())
        .map(|path| {
            let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            aligndata_models::embed::lora::Adapter::from_bytes(&bytes, path)
                .unwrap_or_else(|e| panic!("{e:#}"))
        })
        .collect();
    let adapter = adapters.first().cloned();
    let first_part = adapter.as_ref().map(|a| {
        let mut m = minilm_base();
        m.apply_adapter(a, "dev")
            .unwrap_or_else(|e| panic!("{e:#}"));
        m
    });
    let embedder: Box<dyn aligndata_models::embed::Embedder> = if adapters.is_empty() {
        embedder
    } else {
        let parts = adapters
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let mut m = minilm_base();
                m.apply_adapter(a, &format!("dev-{i}"))
                    .unwrap_or_else(|e| panic!("{e:#}"));
                Box::new(m) as Box<dyn aligndata_models::embed::Embedder>
            })
            .collect();
        Box::new(
            aligndata_models::embed::ConcatEmbedder::new("dev", parts)
                .unwrap_or_else(|e| panic!("{e:#}")),
        )
    };
    let rules = Detector::default();
    let defaults = classifier::FitOptions::default();
    // CRISIS_FEATURES: comma-separated `none` or `DIM:WEIGHT` (hashed n-grams joined to MiniLM).
    let features = std::env::var("CRISIS_FEATURES").unwrap_or_else(|_| "default".into());
    for spec in features.split(',') {
        let lexical = match spec.split_once(':') {
            _ if spec == "default" => defaults.lexical,
            None => None,
            Some((dim, w)) => Some(classifier::Lexical {
                dim: dim.parse().unwrap_or_else(|e| panic!("{spec}: {e}")),
                weight: w.parse().unwrap_or_else(|e| panic!("{spec}: {e}")),
            }),
        };
        let opts = classifier::FitOptions {
            l2: std::env::var("CRISIS_L2")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(defaults.l2),
            standardise: std::env::var("CRISIS_STANDARDISE")
                .map(|v| v == "1")
                .unwrap_or(defaults.standardise),
            lexical,
        };
        let mut model = CrisisModel::train_with(embedder.as_ref(), &examples, "dev", opts)
            .unwrap_or_else(|e| panic!("{e:#}"));
        if let Ok(path) = std::env::var("CRISIS_CALIBRATE") {
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            let cases =
                classifier::parse_examples(&text, &path).unwrap_or_else(|e| panic!("{e:#}"));
            classifier::calibrate(&mut model, embedder.as_ref(), &cases)
                .unwrap_or_else(|e| panic!("{e:#}"));
            println!("calibrated on {path}: {:?}", model.calibration);
        }
        let check = ClassifierCheck::with_model(embedder.as_ref(), model.clone());
        let texts: Vec<&str> = eval.iter().map(|c| c.text.as_str()).collect();
        let probs = check
            .probabilities(&texts)
            .unwrap_or_else(|e| panic!("{e:#}"));
        println!(
            "{spec} {opts:?}: threshold {:.3} weak {:.3}, cv precision {:.3} recall {:.3}",
            model.threshold, model.weak_threshold, model.cv_precision, model.cv_recall
        );
        if let (Ok(solo), Ok(weak)) = (std::env::var("CRISIS_SOLO"), std::env::var("CRISIS_WEAK")) {
            model.threshold = solo.parse().unwrap_or(model.threshold);
            model.weak_threshold = weak.parse().unwrap_or(model.weak_threshold);
        }
        let mut line = String::from("  shipped thresholds:");
        let dets: Vec<Detection> = eval
            .iter()
            .zip(&probs)
            .map(|(c, p)| rules.decide(&c.text, *p, &model))
            .collect();
        for kind in ["direct", "indirect", "lookalike", "distress"] {
            let (n, f) = eval
                .iter()
                .zip(&dets)
                .filter(|(c, _)| c.kind == kind)
                .fold((0, 0), |(n, f), (_, d)| (n + 1, f + u32::from(d.crisis)));
            line.push_str(&format!(" {kind} {f}/{n}"));
        }
        let rows: Vec<(&str, f32, bool)> = eval
            .iter()
            .zip(&probs)
            .map(|(c, p)| (c.text.as_str(), *p, c.crisis))
            .collect();
        let (p, r) = scored_figures(&rules, &model, &rows);
        println!("{line}: precision {p:.3} recall {r:.3}");
        if std::env::var_os("CRISIS_GRID").is_some() {
            for solo in [0.9f32, 0.8, 0.7, 0.6, 0.5, 0.4] {
                let mut line = format!("  solo {solo:.2}:");
                for weak in [0.3f32, 0.2, 0.1, 0.05] {
                    let m = CrisisModel {
                        threshold: solo,
                        weak_threshold: weak.min(solo),
                        ..model.clone()
                    };
                    let (p, r) = scored_figures(&rules, &m, &rows);
                    line.push_str(&format!(" weak {weak:.2} {p:.3}/{r:.3}"));
                }
                println!("{line}");
            }
        }
        if let Ok(path) = std::env::var("CRISIS_DUMP") {
            // One JSON line per case: the rules' findings and the probability, for trying
            // decision policies offline.
            let mut out = String::new();
            let texts: Vec<&str> = eval.iter().map(|c| c.text.as_str()).collect();
            let head_p: Vec<Option<f32>> = match (&adapter, &first_part) {
                (Some(a), Some(first)) => first
                    .embed(&texts)
                    .unwrap_or_else(|e| panic!("{e:#}"))
                    .iter()
                    .map(|row| Some(1.0 / (1.0 + (-a.logit(row)).exp())))
                    .collect(),
                _ => vec![None; texts.len()],
            };
            for ((c, pr), ph) in eval.iter().zip(&probs).zip(head_p) {
                let f = rules.rules_for(&c.text);
                let row = serde_json::json!({
                    "text": c.text, "crisis": c.crisis, "kind": c.kind, "p": pr,
                    "strong": f.det.cues.iter().map(|x| &x.rule).collect::<Vec<_>>(),
                    "weak": f.weak.iter().map(|x| &x.rule).collect::<Vec<_>>(),
                    "idiom": f.idiom, "p_head": ph,
                });
                out.push_str(&row.to_string());
                out.push('\n');
            }
            std::fs::write(&path, out).unwrap_or_else(|e| panic!("{path}: {e}"));
        }
        if std::env::var_os("CRISIS_SHOW").is_some() {
            for ((c, d), pr) in eval.iter().zip(&dets).zip(&probs) {
                if c.crisis != d.crisis {
                    println!(
                        "    {} [{}] p {pr:.2} {} -- {}",
                        if c.crisis { "MISS" } else { "FA" },
                        c.kind,
                        c.text,
                        d.reason()
                    );
                }
            }
        }
    }
}
