//! Integration tests of aligndata-dataset: one binary, a module per area.

mod dataset;
mod input;
mod python;
mod roundtrip;

use std::collections::BTreeMap;

use aligndata_core::{Flag, Label, Provenance, Record, Response, Score, SourceKind};

/// Records that between them fill every field, with unicode, newlines, empty vecs and maps.
pub fn full_records() -> Vec<Record> {
    let mut full = Record::new(
        SourceKind::Synthetic,
        "Ich habe Angst 😟 vor der Präsentation.\nZweite Zeile\t\"quoted\" \\ back".into(),
    );
    full.provenance = Provenance {
        file: Some("in/ünïcode.csv".into()),
        line: Some(u64::MAX),
        original_id: Some("orig-1".into()),
        conversation_id: Some("conv-9".into()),
        turn_index: Some(u32::MAX),
        persona: Some("a nervous student".into()),
        template: Some("continuation-v2".into()),
        prompt_hash: Some("abc123".into()),
        model: Some("SmolLM2-135M".into()),
        params: Some(r#"{"temperature":0.7,"top_p":0.95}"#.into()),
        seed: Some(42),
        attempt: Some(0),
    };
    full.intended = BTreeMap::from([
        ("emotion".to_string(), "fear".to_string()),
        ("situation".to_string(), "präsentation".to_string()),
        ("theme".to_string(), String::new()),
    ]);
    full.labels = vec![
        Label {
            dimension: "emotion".into(),
            value: "fear".into(),
            confidence: 0.1 + 0.2,
            method: "prototype".into(),
        },
        Label {
            dimension: "theme".into(),
            value: "self-doubt".into(),
            confidence: 1e-300,
            method: "llm".into(),
        },
    ];
    full.scores = vec![
        Score {
            name: "quality".into(),
            value: -0.0,
            reason: "line1\nline2".into(),
        },
        Score {
            name: "novelty".into(),
            value: 123456.789e10,
            reason: String::new(),
        },
        Score {
            name: "outlier".into(),
            value: f64::MIN_POSITIVE,
            reason: "tiny".into(),
        },
    ];
    full.flags = vec![
        Flag {
            kind: "duplicate".into(),
            reason: "same as other".into(),
            other_id: Some("x".repeat(32)),
        },
        Flag {
            kind: "pii".into(),
            reason: String::new(),
            other_id: None,
        },
    ];
    full.responses = vec![
        Response {
            text: "That sounds hard. 💬".into(),
            model: "m".into(),
            strategy: "validate".into(),
            scores: vec![Score {
                name: "judge.validation".into(),
                value: 0.5,
                reason: "ok".into(),
            }],
        },
        Response {
            text: String::new(),
            model: String::new(),
            strategy: String::new(),
            scores: vec![],
        },
    ];

    let bare = Record::new(SourceKind::Real, "   ".into());
    let mut partial = Record::new(SourceKind::Feedback, "日本語のテキスト\r\nwith CRLF".into());
    partial.provenance.conversation_id = Some(String::new());
    partial.provenance.turn_index = Some(0);
    partial.intended.insert("only".into(), "one".into());
    partial.flags.push(Flag {
        kind: "crisis".into(),
        reason: "r".into(),
        other_id: None,
    });
    vec![full, bare, partial]
}
