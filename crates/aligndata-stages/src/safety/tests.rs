use super::*;

#[derive(serde::Deserialize)]
struct Case {
    text: String,
    crisis: bool,
    kind: String,
}

fn cases() -> Vec<Case> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("test_data/safety/cases.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad case {l}: {e}")))
        .collect()
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
    assert!(cases.len() >= 120, "the labelled set must hold at least 120 cases, has {}", cases.len());
    let det = Detector::default();
    let kinds = ["direct", "indirect", "lookalike", "distress"];
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
    println!("| kind      | cases | flagged crisis |");
    println!("|-----------|------:|---------------:|");
    for (kind, n, flagged) in &rows {
        println!("| {kind:<9} | {n:>5} | {flagged:>14} |");
    }
    println!("tp {tp} fp {fp} fn {fn_}: precision {precision:.3}, recall {recall:.3}");
    for m in &misses {
        println!("{m}");
    }
    let lookalike_flagged = rows.iter().find(|r| r.0 == "lookalike").map(|r| r.2).unwrap_or(0);
    assert!(recall >= 0.95, "recall {recall:.3} < 0.95");
    assert!(precision >= 0.9, "precision {precision:.3} < 0.9");
    assert!(lookalike_flagged <= 2, "{lookalike_flagged} look-alikes flagged");
}

#[test]
fn reasons_name_the_cue_and_the_suppression() {
    let det = Detector::default();
    let d = det.detect("Everyone would be better off without me.");
    assert!(d.crisis);
    assert!(d.reason().contains("indirect.better_off_without"), "{}", d.reason());
    let d = det.detect("I would never hurt myself, I just feel low.");
    assert!(!d.crisis);
    assert!(d.reason().contains("negated by \"never\""), "{}", d.reason());
    let d = det.detect("I'm dying to know if I passed.");
    assert!(!d.crisis, "{}", d.reason());
    let d = det.detect("My essay is about suicide prevention.");
    assert!(!d.crisis);
    assert!(d.reason().contains("idiom.suicide_topic"), "{}", d.reason());
}

#[test]
fn marking_adds_label_and_score_once() {
    let det = Detector::default();
    let mut r = Record::new(aligndata_core::SourceKind::Real, "I want to kill myself".into());
    let d = det.detect(&r.text);
    mark(&mut r, &d);
    mark(&mut r, &d);
    assert_eq!(r.labels.iter().filter(|l| l.value == CRISIS_VALUE).count(), 1);
    assert_eq!(r.score(SCORE_NAME), Some(1.0));
}

#[test]
fn resources_by_locale_with_fallback() {
    let res = Resources::parse(DEFAULT_RESOURCES, "resources.yaml").expect("default resources parse");
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
