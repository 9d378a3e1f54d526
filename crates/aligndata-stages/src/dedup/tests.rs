use std::path::PathBuf;

use aligndata_core::{Record, SourceKind};
use aligndata_dataset::{Dataset, DatasetWriter, ManifestFields, WriterOptions};
use aligndata_models::embed::{EmbedderKind, HashedEmbedder, load_embedder};

use super::*;

fn exact_only() -> DedupConfig {
    DedupConfig {
        exact: true,
        near: None,
        semantic: None,
        ..DedupConfig::default()
    }
}

fn near_only(threshold: f64) -> DedupConfig {
    DedupConfig {
        exact: false,
        near: Some(NearConfig {
            threshold,
            ..NearConfig::default()
        }),
        semantic: None,
        ..DedupConfig::default()
    }
}

fn dup_records(d: &Decisions) -> Vec<u32> {
    d.duplicates.iter().map(|x| x.record).collect()
}

#[test]
fn exact_catches_case_spacing_and_punctuation() {
    let texts = [
        "I froze during my presentation.",
        "i froze   during my PRESENTATION",
        "I froze during my presentation!!!",
        "I froze during my interview.",
        "!!!",
        "???",
    ];
    let d = dedup_texts(&texts, &exact_only(), None).unwrap();
    assert_eq!(dup_records(&d), vec![1, 2]);
    assert!(
        d.duplicates
            .iter()
            .all(|x| x.keeper == 0 && x.method == Method::Exact)
    );
    assert_eq!(d.empty, 2, "punctuation-only texts are never duplicates");
    assert_eq!(d.clusters, vec![(0, 3)]);
}

#[test]
fn near_catches_one_changed_word_but_not_another_sentence() {
    let base = "every time my manager asks me to present the quarterly numbers to the whole team \
                I freeze and forget everything I practised the night before";
    let one_word = base.replace("manager", "director");
    let other = "my sister keeps telling me that I never finish anything I start and I am starting \
                 to believe her about the painting classes";
    let texts = [base, one_word.as_str(), other];
    let d = dedup_texts(&texts, &near_only(0.7), None).unwrap();
    assert_eq!(dup_records(&d), vec![1], "{:?}", d.duplicates);
    let dup = d.duplicates[0];
    assert_eq!((dup.keeper, dup.method), (0, Method::Near));
    assert!(dup.score >= 0.7 && dup.score < 1.0, "{}", dup.score);
}

#[test]
fn near_with_word_shingles_and_explicit_bands() {
    let config = DedupConfig {
        exact: false,
        near: Some(NearConfig {
            shingle: Shingle::Word(1),
            num_perm: 64,
            bands: Some((16, 4)),
            threshold: 0.7,
            seed: 3,
        }),
        semantic: None,
        ..DedupConfig::default()
    };
    let texts = [
        "i cannot sleep before exams because i keep thinking i will fail them all",
        "i cannot sleep before exams because i keep thinking i will fail them all again",
        "the weather is lovely and the garden is full of tomatoes this summer",
    ];
    let d = dedup_texts(&texts, &config, None).unwrap();
    assert_eq!(dup_records(&d), vec![1]);
    assert_eq!(d.bands, Some((16, 4)));
}

#[test]
fn semantic_catches_reworded_text_with_the_hashed_embedder() {
    let embedder = HashedEmbedder::default();
    let config = DedupConfig {
        exact: false,
        near: None,
        semantic: Some(SemanticConfig {
            threshold: 0.75,
            ..SemanticConfig::default()
        }),
        ..DedupConfig::default()
    };
    let texts = [
        "I keep freezing up whenever I have to present at work",
        "whenever I have to present at work, I keep freezing up",
        "my cat knocked the plants off the balcony again",
    ];
    let d = dedup_texts(&texts, &config, Some(&embedder)).unwrap();
    assert_eq!(dup_records(&d), vec![1], "{:?}", d.duplicates);
    assert_eq!(d.duplicates[0].method, Method::Semantic);
    assert_eq!(d.semantic_search, Some("brute force"));
    // Semantic without an embedder is a clear error, not a panic.
    assert!(dedup_texts(&texts, &config, None).is_err());
}

#[test]
fn semantic_catches_paraphrases_with_minilm_when_installed() {
    let embedder = match load_embedder(EmbedderKind::MiniLm, true, &|_| {}) {
        Ok(e) => e,
        Err(e) => {
            eprintln!(
                "SKIPPED semantic_catches_paraphrases_with_minilm: MiniLM not installed ({e})"
            );
            return;
        }
    };
    let config = DedupConfig {
        exact: false,
        near: None,
        semantic: Some(SemanticConfig {
            threshold: 0.8,
            ..SemanticConfig::default()
        }),
        ..DedupConfig::default()
    };
    let texts = [
        "I get so anxious before every presentation that I can't sleep",
        "Before each presentation I'm so anxious I cannot sleep",
        "What is a good recipe for banana bread?",
    ];
    let d = dedup_texts(&texts, &config, Some(embedder.as_ref())).unwrap();
    assert_eq!(dup_records(&d), vec![1], "{:?}", d.duplicates);
}

#[test]
fn same_result_whatever_the_thread_count() {
    let base = [
        "I always feel like a fraud at work even when I get good feedback from my team",
        "my exams are next week and I have not started revising any of the chapters yet",
        "I froze in the middle of my talk and everyone was staring at me in silence",
    ];
    let mut texts: Vec<String> = Vec::new();
    for i in 0..3000 {
        let b = base[i % 3];
        texts.push(match i % 5 {
            0 => b.to_string(),
            1 => b.to_uppercase(),
            2 => format!("{b} {}", i % 7),
            3 => format!("unrelated message number {i} about topic {}", i * 31 % 997),
            _ => b.replace("I ", "i really "),
        });
    }
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let config = DedupConfig::default();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| dedup_texts(&refs, &config, None).unwrap())
    };
    let (a, b) = (run(1), run(4));
    assert_eq!(a.duplicates, b.duplicates);
    assert_eq!(a.clusters, b.clusters);
    assert!(!a.duplicates.is_empty());
    // The keeper is always earlier than what it keeps.
    assert!(a.duplicates.iter().all(|d| d.keeper < d.record));
}

#[test]
fn keeper_is_the_earliest_unflagged_record() {
    let mut deduper = Deduper::new(&exact_only(), None).unwrap();
    deduper
        .push_batch(&[
            ("same text here", true),
            ("Same text, here!", false),
            ("same text here", false),
        ])
        .unwrap();
    let d = deduper.finish();
    let keepers: Vec<(u32, u32)> = d.duplicates.iter().map(|x| (x.record, x.keeper)).collect();
    assert_eq!(keepers, vec![(0, 1), (2, 1)]);
}

fn write_dataset(dir: &std::path::Path, source: SourceKind, texts: &[&str]) -> PathBuf {
    let mut w = DatasetWriter::create(dir, WriterOptions::default()).unwrap();
    for t in texts {
        w.push(&Record::new(source, (*t).to_string())).unwrap();
    }
    w.finish(ManifestFields {
        stage: "test".into(),
        ..Default::default()
    })
    .unwrap();
    dir.to_path_buf()
}

#[test]
fn across_datasets_the_flag_points_at_the_keeper_and_names_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let real = write_dataset(
        &tmp.path().join("real"),
        SourceKind::Real,
        &[
            "I can't stop worrying about my thesis defence",
            "nobody at the new job talks to me",
        ],
    );
    let synth = write_dataset(
        &tmp.path().join("synthetic"),
        SourceKind::Synthetic,
        &[
            "i cant stop worrying about my thesis defence",
            "a completely different worry about money",
        ],
    );
    let out = tmp.path().join("out");
    let summary = dedup(
        &[real.clone(), synth.clone()],
        &out,
        &DedupConfig::default(),
        None,
        &|_, _| {},
    )
    .unwrap();
    assert_eq!((summary.records, summary.duplicates), (4, 1));
    assert_eq!(summary.by_method.get("exact"), Some(&1));
    assert_eq!(
        summary.inputs[1]
            .keepers_in
            .get(&real.display().to_string()),
        Some(&1)
    );

    let records: Vec<Record> = Dataset::open(&out)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), 4, "nothing is dropped");
    let keeper_id = records[0].id.clone();
    let flagged: Vec<&Record> = records.iter().filter(|r| !r.flags.is_empty()).collect();
    assert_eq!(flagged.len(), 1);
    let flag = &flagged[0].flags[0];
    assert_eq!(flagged[0].source, SourceKind::Synthetic);
    assert_eq!(flag.kind, FLAG_KIND);
    assert_eq!(flag.other_id.as_deref(), Some(keeper_id.as_str()));
    assert!(
        flag.reason.starts_with("exact duplicate of"),
        "{}",
        flag.reason
    );
    assert!(flag.reason.contains("real"), "{}", flag.reason);
    let manifest = Dataset::open(&out).unwrap().manifest;
    assert_eq!(manifest.stage, "dedup");
    assert_eq!(manifest.counts.by_flag.get(FLAG_KIND), Some(&1));

    // Rerunning on the output changes nothing: same flags, not doubled.
    let again = tmp.path().join("again");
    dedup(
        std::slice::from_ref(&out),
        &again,
        &DedupConfig::default(),
        None,
        &|_, _| {},
    )
    .unwrap();
    let records2: Vec<Record> = Dataset::open(&again)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(
        records2
            .iter()
            .map(|r| r.flags.clone())
            .collect::<Vec<_>>()
            .len(),
        4
    );
    assert_eq!(records2[2].flags.len(), 1);
}

#[test]
fn reasons_name_method_score_and_the_matched_record() {
    let dup = Duplicate {
        record: 2,
        keeper: 0,
        matched: 1,
        method: Method::Near,
        score: 0.8712,
    };
    assert_eq!(
        reason(&dup, "K", "M", "real/"),
        "near duplicate (jaccard≈0.87 with M) of K from real/"
    );
    let dup = Duplicate {
        matched: 0,
        method: Method::Semantic,
        score: 0.951,
        ..dup
    };
    assert_eq!(
        reason(&dup, "K", "K", "real/"),
        "semantic duplicate (cos≈0.95) of K from real/"
    );
}

#[test]
#[allow(clippy::field_reassign_with_default)] // each case edits one field of the same config
fn bad_settings_are_errors() {
    let mut c = DedupConfig::default();
    c.near = Some(NearConfig {
        bands: Some((20, 10)),
        ..NearConfig::default()
    });
    assert!(c.validate().unwrap_err().to_string().contains("bands"));
    c.near = Some(NearConfig {
        threshold: 1.5,
        ..NearConfig::default()
    });
    assert!(c.validate().is_err());
}
