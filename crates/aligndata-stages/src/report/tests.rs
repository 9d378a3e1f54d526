//! Report figures on a small mixed dataset: heatmaps per source, a gap near 1 when synthetic and
//! real text differ in kind, judge histograms, and a page that carries every section.

use aligndata_core::{Flag, Label, Record, Response, Score, SourceKind};
use aligndata_dataset::{DatasetWriter, ManifestFields, WriterOptions};
use aligndata_models::embed::HashedEmbedder;

use super::*;

fn rec(source: SourceKind, text: String, theme: &str, situation: &str) -> Record {
    let mut r = Record::new(source, text);
    r.labels.push(Label {
        dimension: "theme".into(),
        value: theme.into(),
        confidence: 0.8,
        method: "t".into(),
    });
    r.labels.push(Label {
        dimension: "situation".into(),
        value: situation.into(),
        confidence: 0.8,
        method: "t".into(),
    });
    r.responses.push(Response {
        text: "That sounds hard.".into(),
        model: "m".into(),
        strategy: "s".into(),
        scores: vec![Score {
            name: "judge.total".into(),
            value: (r.text.len() % 10) as f64 / 10.0,
            reason: String::new(),
        }],
    });
    r
}

#[test]
fn figures_for_a_mixed_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("pool");
    let mut w = DatasetWriter::create(&dir, WriterOptions::default()).unwrap();
    let themes = ["perfectionism", "self-doubt"];
    let situations = ["work", "exams", "family"];
    for i in 0..120 {
        let (t, s) = (themes[i % 2], situations[i % 3]);
        w.push(&rec(
            SourceKind::Synthetic,
            format!("As an individual I am experiencing {t} regarding {s} number {i}."),
            t,
            s,
        ))
        .unwrap();
        w.push(&rec(
            SourceKind::Real,
            format!("ugh {s} again lol, {i} times i messed up and my {t} is wrecking me"),
            t,
            s,
        ))
        .unwrap();
    }
    let mut flagged = rec(SourceKind::Real, "dup".into(), "perfectionism", "work");
    flagged.flags.push(Flag {
        kind: "duplicate".into(),
        reason: String::new(),
        other_id: None,
    });
    w.push(&flagged).unwrap();
    w.finish(ManifestFields {
        stage: "judge".into(),
        ..Default::default()
    })
    .unwrap();

    let config = ReportConfig {
        max_points: 100,
        ..ReportConfig::default()
    };
    let data = build_report(
        &[dir],
        None,
        &HashedEmbedder::default(),
        &config,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!(data.records, 241);
    assert_eq!(data.kept, 240);
    assert_eq!(data.by_flag["duplicate"], 1);
    assert_eq!(data.by_source_flag["real"]["duplicate"], 1);
    assert_eq!(data.dimensions, ["situation", "theme"]);
    let h = &data.heatmaps[0];
    assert_eq!(h.counts["all"].iter().flatten().sum::<u64>(), 240);
    assert_eq!(h.counts["synthetic"].iter().flatten().sum::<u64>(), 120);
    let auc = data.gap.auc.unwrap();
    assert!(auc > 0.9, "synthetic and real differ in kind here: {auc}");
    assert!(!data.gap.per_cell.is_empty());
    assert!(data.map.points.len() <= 100 && data.map.points.len() >= 90);
    assert_eq!(data.judge[0].name, "judge.total");
    assert_eq!(data.judge[0].count, 240);
    assert!(data.diversity["real"].distinct_1 > 0.0);
    assert!(!data.examples.is_empty() && data.examples[0].examples.len() <= 3);

    let (html, json) = write_report(&data, &tmp.path().join("report")).unwrap();
    let page = std::fs::read_to_string(html).unwrap();
    for needle in [
        "class=\"heatmap\"",
        "id=\"map\"",
        "id=\"gap-auc\"",
        "Judge scores",
        "<details>",
    ] {
        assert!(page.contains(needle), "page has {needle}");
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "no network references"
    );
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(back["records"], 241);
}
