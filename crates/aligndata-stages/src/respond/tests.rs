#![allow(clippy::print_stdout)] // tests print their tables for `--nocapture`

use aligndata_core::SourceKind;
use aligndata_models::llm::{LocalConfig, LocalLlm};

use super::*;

fn policy() -> Policy {
    Policy::parse(DEFAULT_POLICY, "policy.yaml").expect("default policy parses")
}

fn resources() -> Resources {
    Resources::parse(safety::DEFAULT_RESOURCES, "resources.yaml").expect("default resources parse")
}

#[test]
fn default_policy_parses_and_renders_rules() {
    let p = policy();
    assert_eq!(p.id, "helping-skills-v1");
    let sys = p.system_message();
    assert!(sys.contains("Rules:") && sys.contains("diagnose"));
    let r0 = p.request("I froze", 0, 1);
    let r1 = p.request("I froze", 1, 1);
    assert_ne!(
        r0.temperature, r1.temperature,
        "candidates sample at different temperatures"
    );
    assert!(Policy::parse("id: x\nsystem: s\ntemperatures: []\n", "p.yaml").is_err());
    let err = Policy::parse("id: x\nsystem: s\nrulez: []\n", "p.yaml")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("p.yaml:3"), "{err}");
}

#[test]
fn clean_reply_strips_speaker_tags() {
    assert_eq!(clean_reply("  Assistant: hello  "), "hello");
    assert_eq!(clean_reply("\n"), "");
}

/// The real default model (SmolLM2-135M) on three inputs, one a crisis.
#[test]
fn local_model_answers_and_crisis_gets_resources() {
    let path = match aligndata_models::registry::ensure("smollm2-135m", false, &|_| {}) {
        Ok(p) => p,
        Err(e) => {
            panic!("SmolLM2 GGUF unavailable ({e:#}); run `aligndata models install smollm2-135m`")
        }
    };
    let llm = LocalLlm::load(&path, LocalConfig::default()).expect("load SmolLM2");
    let mut records = vec![
        Record::new(
            SourceKind::Real,
            "I froze during my presentation and now I think everyone sees me as a fraud.".into(),
        ),
        Record::new(
            SourceKind::Real,
            "I keep comparing myself to my classmates and I feel like I'll never be good enough."
                .into(),
        ),
        Record::new(
            SourceKind::Real,
            "Honestly everyone would be better off without me.".into(),
        ),
    ];
    let mut p = policy();
    p.max_tokens = 48;
    let config = RespondConfig {
        n: 2,
        locale: Some("UK".into()),
        ..RespondConfig::default()
    };
    let mut summary = RespondSummary::default();
    let det = Detector::default();
    respond_batch(
        &mut records,
        &p,
        &resources(),
        &det,
        &llm,
        &config,
        &mut summary,
    )
    .expect("respond");
    for r in &records[..2] {
        assert_eq!(r.responses.len(), 2, "{r:?}");
        for resp in &r.responses {
            assert!(!resp.text.trim().is_empty());
            assert!(resp.strategy.starts_with("helping-skills-v1@t"));
            println!("{} => {}", r.text, resp.text);
        }
        assert_eq!(r.score(safety::SCORE_NAME), Some(0.0));
    }
    let crisis = &records[2];
    assert_eq!(crisis.responses.len(), 2);
    assert!(
        crisis
            .labels
            .iter()
            .any(|l| l.dimension == "risk" && l.value == "crisis" && l.method == "safety")
    );
    for resp in &crisis.responses {
        assert_eq!(resp.strategy, CRISIS_STRATEGY);
        assert!(resp.text.contains("116 123"), "UK resources: {}", resp.text);
        assert!(resp.text.contains('?'), "asks: {}", resp.text);
    }
    assert_eq!(summary.crisis, 1);
    assert_eq!(summary.model_candidates, 4);
}

/// Crisis resources follow each record's locale (intended cell, else a `locale` label), then the
/// run's default, then the file's fallback. Every record here is a crisis input, so the model is
/// never asked; the real default model is still the one passed in.
#[test]
fn crisis_resources_follow_each_records_locale() {
    let path = aligndata_models::registry::ensure("smollm2-135m", false, &|_| {})
        .unwrap_or_else(|e| panic!("SmolLM2 GGUF unavailable ({e:#})"));
    let llm = LocalLlm::load(&path, LocalConfig::default()).expect("load SmolLM2");
    let text = "I've written letters to everyone and I want to kill myself tonight.";
    let mut from_cell = Record::new(SourceKind::Synthetic, format!("{text} (cell)"));
    from_cell
        .intended
        .insert(LOCALE_DIMENSION.into(), "IE".into());
    let mut from_label = Record::new(SourceKind::Real, format!("{text} (label)"));
    for (value, confidence) in [("US", 0.2), ("AU", 0.9)] {
        from_label.labels.push(aligndata_core::Label {
            dimension: LOCALE_DIMENSION.into(),
            value: value.into(),
            confidence,
            method: "trained".into(),
        });
    }
    let plain = Record::new(SourceKind::Real, format!("{text} (none)"));
    let mut records = vec![from_cell, from_label, plain];
    assert_eq!(record_locale(&records[0]), Some("IE"));
    assert_eq!(record_locale(&records[1]), Some("AU"));
    assert_eq!(record_locale(&records[2]), None);

    let run = |records: &mut Vec<Record>, locale: Option<&str>| {
        let config = RespondConfig {
            n: 1,
            locale: locale.map(str::to_string),
            ..RespondConfig::default()
        };
        let mut summary = RespondSummary::default();
        respond_batch(
            records,
            &policy(),
            &resources(),
            &Detector::default(),
            &llm,
            &config,
            &mut summary,
        )
        .expect("respond");
        summary
    };
    let summary = run(&mut records, Some("UK"));
    assert_eq!(summary.crisis, 3);
    assert_eq!(
        summary.model_candidates, 0,
        "crisis inputs never reach the model"
    );
    let said = |r: &Record| r.responses[0].text.clone();
    assert!(
        said(&records[0]).contains("Samaritans Ireland"),
        "{}",
        said(&records[0])
    );
    assert!(
        said(&records[1]).contains("13 11 14"),
        "{}",
        said(&records[1])
    );
    assert!(!said(&records[1]).contains("988"), "{}", said(&records[1]));
    assert!(
        said(&records[2]).contains("Shout"),
        "run default UK: {}",
        said(&records[2])
    );
    let by_locale: Vec<(&str, u64)> = summary
        .crisis_by_locale
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(by_locale, vec![("AU", 1), ("IE", 1), ("UK", 1)]);

    // No default: the record without a locale gets the file's fallback (international lines).
    let summary = run(&mut records, None);
    assert!(
        said(&records[2]).contains("findahelpline.com"),
        "{}",
        said(&records[2])
    );
    assert!(said(&records[0]).contains("Samaritans Ireland"));
    assert_eq!(summary.crisis_by_locale.get("default"), Some(&1));
}
