use std::path::Path;

use aligndata_core::{Record, SourceKind};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::embed::{EmbedderKind, HashedEmbedder, load_embedder};

use super::tfidf::char_wb_ngrams;
use super::*;

fn taxonomy() -> Taxonomy {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/self-doubt/taxonomy.yaml");
    Taxonomy::load(&path).unwrap()
}

/// Clear messages, each with the value it must get.
const CLEAR: &[(&str, &str, &str)] = &[
    (
        "situation",
        "job-interview",
        "I have a job interview tomorrow and my resume has a gap, the recruiter will ask about it",
    ),
    (
        "situation",
        "exams-and-study",
        "My exam is on Monday and I haven't started revision, my grades this semester are awful",
    ),
    (
        "situation",
        "giving-a-presentation",
        "I have to give a presentation to the whole audience with my slides and I freeze on stage",
    ),
    (
        "situation",
        "relationship-struggles",
        "My boyfriend and I keep fighting and I think our relationship is ending",
    ),
    (
        "emotion",
        "anxious",
        "I'm so anxious and nervous, my heart is racing and I can't sleep from worry",
    ),
    (
        "emotion",
        "lonely",
        "I feel so lonely, I'm alone every night with nobody to talk to",
    ),
    (
        "emotion",
        "angry",
        "I'm furious, I'm so angry at how unfair this is, I'm livid",
    ),
    (
        "theme",
        "impostor-feelings",
        "I feel like a fraud at work, a fake who got lucky, and soon they'll find out I don't belong",
    ),
];

fn accuracy(kind: EmbedderKind) -> Option<(usize, usize)> {
    let embedder = match load_embedder(kind, true, &|_| {}) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("SKIP {kind}: model not installed ({e})");
            return None;
        }
    };
    let tax = taxonomy();
    let protos = taxonomy_prototypes(&tax, embedder.as_ref(), &PrototypeConfig::default()).unwrap();
    let labeller = Labeller::Prototype(protos);
    let texts: Vec<&str> = CLEAR.iter().map(|c| c.2).collect();
    let (labels, _) = labeller
        .label_texts(&tax, Some(embedder.as_ref()), &texts)
        .unwrap();
    let mut right = 0;
    for ((dim, value, text), got) in CLEAR.iter().zip(&labels) {
        let best = got.iter().find(|l| l.dimension == *dim);
        if best.is_some_and(|l| l.value == *value) {
            right += 1;
        } else {
            eprintln!("{kind}: {text:?} → {best:?}, wanted {dim}={value}");
        }
        assert!(
            got.iter()
                .all(|l| l.method == METHOD_PROTOTYPE && (0.0..=1.0).contains(&l.confidence))
        );
    }
    Some((right, CLEAR.len()))
}

#[test]
fn prototype_puts_clear_examples_in_the_right_value_hashed() {
    let (right, n) = accuracy(EmbedderKind::Hashed).unwrap();
    assert!(right * 10 >= n * 7, "hashed: {right}/{n} right");
}

#[test]
fn prototype_puts_clear_examples_in_the_right_value_static() {
    if let Some((right, n)) = accuracy(EmbedderKind::Static) {
        assert!(right * 10 >= n * 7, "static: {right}/{n} right");
    }
}

#[test]
fn prototype_says_none_for_unrelated_text_and_modes_parse() {
    let embedder = HashedEmbedder::default();
    let labels = vec![
        (
            "cats".to_string(),
            vec![
                "cat kitten meow purr".to_string(),
                "my cat purrs and meows".to_string(),
            ],
        ),
        (
            "cars".to_string(),
            vec![
                "car engine wheels drive".to_string(),
                "my car engine will not start".to_string(),
            ],
        ),
    ];
    for mode in [PrototypeMode::Mean, PrototypeMode::Max] {
        let p = Prototypes::build(
            &embedder,
            &labels,
            PrototypeConfig {
                mode,
                ..PrototypeConfig::default()
            },
        )
        .unwrap();
        let v = &embedder
            .embed(&["the kitten meows and purrs", "zzqx vvbnm plokij"])
            .unwrap();
        assert_eq!(p.predict(&v[0]).first().map(|x| x.0), Some(0), "{mode:?}");
        assert!(
            p.predict(&v[1]).is_empty(),
            "{mode:?}: gibberish gets none (threshold {})",
            p.threshold
        );
    }
    assert_eq!("max".parse::<PrototypeMode>().unwrap(), PrototypeMode::Max);
    assert!("median".parse::<PrototypeMode>().is_err());
}

fn toy(n: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<Vec<usize>>) {
    // Three labels on 8-d points: label 0 when x0 > 0.3, label 1 when x1 > 0.3, label 2 never
    // alone: when both.
    let mut rng = linear::Rng::new(seed);
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for _ in 0..n {
        let x: Vec<f32> = (0..8)
            .map(|_| (rng.next_u64() % 2000) as f32 / 1000.0 - 1.0)
            .collect();
        let mut y = Vec::new();
        if x[0] > 0.3 {
            y.push(0);
        }
        if x[1] > 0.3 {
            y.push(1);
        }
        if x[2] + x[3] > 0.5 {
            y.push(2);
        }
        xs.push(x);
        ys.push(y);
    }
    (xs, ys)
}

#[test]
fn trained_classifier_learns_a_separable_toy_problem() {
    let (xs, ys) = toy(3000, 1);
    let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let model = LinearClassifier::train(
        labels,
        &xs,
        &ys,
        &TrainConfig {
            epochs: 30,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    model.validate().unwrap();
    let (tx, ty) = toy(1000, 2);
    let predicted: Vec<Vec<usize>> = tx
        .iter()
        .map(|x| model.predict(x).into_iter().map(|p| p.0).collect())
        .collect();
    let (per, macro_f1) = f1_scores(3, &predicted, &ty);
    assert!(macro_f1 > 0.93, "macro-F1 {macro_f1}, per label {per:?}");
    assert!(model.heldout_f1.iter().all(|f| f.is_some()));
    // At least one label: never empty, and equal to `predict` when that is not empty.
    for x in tx.iter().take(200) {
        let strict = model.predict(x);
        let loose = model.predict_at_least_one(x);
        assert!(!loose.is_empty());
        if !strict.is_empty() {
            assert_eq!(strict, loose);
        }
    }
}

#[test]
fn cross_validated_thresholds_use_every_example_and_still_learn() {
    let (xs, ys) = toy(1500, 3);
    let labels = vec!["a".to_string(), "b".to_string(), "c".to_string()];
    let config = TrainConfig {
        epochs: 30,
        folds: 4,
        ..TrainConfig::default()
    };
    let model = LinearClassifier::train(labels.clone(), &xs, &ys, &config).unwrap();
    model.validate().unwrap();
    let (tx, ty) = toy(1000, 4);
    let predicted: Vec<Vec<usize>> = tx
        .iter()
        .map(|x| model.predict(x).into_iter().map(|p| p.0).collect())
        .collect();
    let (per, macro_f1) = f1_scores(3, &predicted, &ty);
    assert!(macro_f1 > 0.93, "macro-F1 {macro_f1}, per label {per:?}");
    // Out-of-fold F1 exists for every label (every example was scored once), and the thresholds
    // are tuned, not the 0.5 default of an empty holdout.
    assert!(model.heldout_f1.iter().all(|f| f.is_some_and(|f| f > 0.8)));
    assert!(model.thresholds.iter().any(|&t| (t - 0.5).abs() > 1e-6));
    // Fewer than two examples per fold: the held-out split instead, not an error.
    let tiny = LinearClassifier::train(
        labels,
        &xs[..6],
        &ys[..6],
        &TrainConfig {
            folds: 5,
            ..TrainConfig::default()
        },
    )
    .unwrap();
    tiny.validate().unwrap();
}

#[test]
fn train_rejects_bad_shapes() {
    let labels = vec!["a".to_string()];
    assert!(
        LinearClassifier::train(
            labels.clone(),
            &[vec![1.0], vec![2.0, 3.0]],
            &[vec![], vec![0]],
            &TrainConfig::default()
        )
        .is_err()
    );
    assert!(
        LinearClassifier::train(
            labels.clone(),
            &[vec![1.0], vec![2.0]],
            &[vec![], vec![4]],
            &TrainConfig::default()
        )
        .is_err()
    );
    assert!(
        LinearClassifier::train(labels, &[vec![1.0]], &[vec![0]], &TrainConfig::default()).is_err()
    );
}

#[test]
fn best_threshold_and_f1() {
    let (t, f1) = best_threshold(&[0.9, 0.8, 0.3, 0.1], &[true, true, false, false]);
    assert!(t > 0.3 && t < 0.8, "{t}");
    assert_eq!(f1, Some(1.0));
    assert_eq!(best_threshold(&[0.2], &[false]), (0.5, None));
    let (per, m) = f1_scores(2, &[vec![0], vec![1], vec![]], &[vec![0], vec![0], vec![1]]);
    assert!((per[0] - 2.0 / 3.0).abs() < 1e-9 && per[1] == 0.0 && (m - 1.0 / 3.0).abs() < 1e-9);
}

fn synthetic_examples(tax: &Taxonomy) -> Vec<Example> {
    // The taxonomy's own examples, labelled with their value: enough for a tiny model.
    let mut out = Vec::new();
    for dim in &tax.dimensions {
        for v in &dim.values {
            for e in v.examples.iter().chain(std::iter::once(&v.description)) {
                out.push(Example {
                    text: e.clone(),
                    labels: vec![(dim.id.clone(), v.id.clone())],
                });
            }
        }
    }
    out
}

#[test]
fn model_save_load_round_trip_and_checks() {
    let tax = taxonomy();
    let embedder = HashedEmbedder::new(256);
    let examples = synthetic_examples(&tax);
    let config = TrainConfig {
        epochs: 5,
        holdout: 0.2,
        ..TrainConfig::default()
    };
    let (model, summary) = train_model(
        &tax,
        Some((&embedder, "hashed")),
        &examples,
        "test",
        &config,
        &|_| {},
    )
    .unwrap();
    assert_eq!(summary.examples, examples.len());
    assert!(summary.dimensions.contains_key("theme"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.json");
    model.save(&path).unwrap();
    let back = LabelModel::load(&path).unwrap();
    assert_eq!(back, model);
    back.check_taxonomy(&tax).unwrap();

    // A damaged file is an error that names it, not a panic.
    let mut broken = model.clone();
    broken.dimensions[0].classifier.weights.pop();
    std::fs::write(&path, serde_json::to_vec(&broken).unwrap()).unwrap();
    let err = format!("{:#}", LabelModel::load(&path).unwrap_err());
    assert!(err.contains("model.json"), "{err}");
    std::fs::write(&path, "{not json").unwrap();
    assert!(LabelModel::load(&path).is_err());
    assert!(LabelModel::load(&dir.path().join("missing.json")).is_err());
    let mut other = model;
    other.dimensions[0].id = "nope".into();
    assert!(other.check_taxonomy(&tax).is_err());
}

#[test]
fn label_stage_writes_labels_and_summary() {
    let tax = taxonomy();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let mut writer = DatasetWriter::create(&input, WriterOptions::default()).unwrap();
    for (dim, value, text) in CLEAR {
        let mut r = Record::new(SourceKind::Synthetic, text.to_string());
        r.intended.insert(dim.to_string(), value.to_string());
        r.labels.push(Label {
            dimension: "theme".into(),
            value: "old".into(),
            confidence: 1.0,
            method: METHOD_PROTOTYPE.into(),
        });
        writer.push(&r).unwrap();
    }
    writer
        .finish(ManifestFields {
            stage: "test".into(),
            ..ManifestFields::default()
        })
        .unwrap();

    let embedder = HashedEmbedder::default();
    let protos = taxonomy_prototypes(&tax, &embedder, &PrototypeConfig::default()).unwrap();
    let out = dir.path().join("out");
    let summary = label(
        &input,
        &out,
        &tax,
        &Labeller::Prototype(protos),
        Some(&embedder),
        &LabelConfig {
            format: Format::Jsonl,
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(summary.records, CLEAR.len() as u64);
    assert_eq!(summary.dimensions.len(), tax.dimensions.len());
    for d in summary.dimensions.values() {
        assert_eq!(d.values.values().sum::<u64>() + d.none, CLEAR.len() as u64);
    }
    assert!(summary.intended_agreement.unwrap() > 0.5, "{summary:?}");
    let records: Vec<Record> = Dataset::open(&out)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), CLEAR.len());
    assert!(
        records
            .iter()
            .all(|r| r.labels.iter().all(|l| l.value != "old")),
        "old labels of the method are replaced"
    );
}

#[test]
fn llm_answers_are_parsed_strictly() {
    let tax = taxonomy();
    let req = llm::request(&tax, "hello");
    assert!(
        req.messages
            .iter()
            .any(|m| m.content.contains("theme: <value id or none>"))
    );
    let good = "theme: perfectionism\nsituation: none\nemotion: `anxious`\nrisk: none";
    let parsed = llm::parse(&tax, good).unwrap();
    assert_eq!(parsed["theme"].as_deref(), Some("perfectionism"));
    assert_eq!(parsed["situation"], None);
    assert!(
        llm::parse(&tax, "theme: perfectionism").is_err(),
        "missing dimensions"
    );
    assert!(
        llm::parse(
            &tax,
            "theme: grumpy\nsituation: none\nemotion: sad\nrisk: none"
        )
        .is_err()
    );
}

#[test]
fn jsonl_labels_map_to_taxonomy_values() {
    let tax = taxonomy();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.jsonl");
    std::fs::write(
        &path,
        "{\"text\":\"a\",\"meta\":{\"y\":[\"nervous\",\"zzz\"]}}\n{\"text\":\"b\",\"meta\":{\"y\":\"emotion=sad\"}}\n\n{\"text\":\"c\"}\n",
    )
    .unwrap();
    let (ex, unknown) = examples_from_jsonl(&path, &tax, "text", "meta.y", None).unwrap();
    assert_eq!(ex.len(), 1);
    assert_eq!(
        ex[0].labels,
        vec![("emotion".to_string(), "sad".to_string())]
    );
    assert_eq!(unknown.get("nervous"), Some(&1));
    let mut map = BTreeMap::new();
    map.insert("nervous".to_string(), vec!["emotion=anxious".to_string()]);
    map.insert("emotion=sad".to_string(), vec!["sad".to_string()]);
    let (ex, _) = examples_from_jsonl(&path, &tax, "text", "meta.y", Some(&map)).unwrap();
    assert_eq!(ex.len(), 2);
    assert_eq!(
        ex[0].labels,
        vec![("emotion".to_string(), "anxious".to_string())]
    );
    assert_eq!(
        resolve(&tax, "situation=job-interview"),
        Some(("situation".into(), "job-interview".into()))
    );
    assert_eq!(resolve(&tax, "situation=nope"), None);
}

#[test]
fn tfidf_follows_the_scikit_learn_conventions() {
    let texts = [
        "I am so sorry for your loss",
        "Sorry, I did not mean it",
        "Thanks a lot, so kind",
        "so so sorry",
    ];
    let t = Tfidf::fit(
        &texts,
        &TfidfConfig {
            min_df: 2,
            max_terms: 0,
            ..TfidfConfig::words_only()
        },
    )
    .unwrap();
    // Lowercased, one-character tokens dropped, bigrams kept when two texts have them.
    let mut terms = t.terms.clone();
    terms.sort();
    assert_eq!(terms, vec!["so", "so sorry", "sorry"]);
    // Smoothed idf: ln((1 + n) / (1 + df)) + 1; `so` is in 3 of 4 texts.
    let so = t.terms.iter().position(|x| x == "so").unwrap();
    assert!((t.idf[so] - ((5.0f32 / 4.0).ln() + 1.0)).abs() < 1e-6);
    // Sublinear tf, unit length, unknown words ignored, features in order.
    let row = t.transform("So so SORRY zebra");
    assert_eq!(row.len(), 3);
    assert!(row.windows(2).all(|w| w[0].0 < w[1].0));
    let norm: f32 = row.iter().map(|p| p.1 * p.1).sum();
    assert!((norm - 1.0).abs() < 1e-5);
    let so_value = row.iter().find(|p| p.0 as usize == so).unwrap().1;
    let sorry = t.terms.iter().position(|x| x == "sorry").unwrap();
    let sorry_value = row.iter().find(|p| p.0 as usize == sorry).unwrap().1;
    let ratio = so_value / sorry_value;
    let want = (1.0 + 2f32.ln()) * t.idf[so] / t.idf[sorry];
    assert!((ratio - want).abs() < 1e-4, "{ratio} vs {want}");
    assert!(t.transform("zebra").is_empty());
}

#[test]
fn char_wb_ngrams_match_scikit_learn() {
    // TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).build_analyzer()("Hi  Bob") gives
    // [' h', 'hi', 'i ', ' hi', 'hi ', ' b', 'bo', 'ob', 'b ', ' bo', 'bob', 'ob ']; a padded
    // word shorter than n (" a " for n = 4, 5) is counted once, whole.
    assert_eq!(
        char_wb_ngrams("Hi  Bob", [2, 3]),
        vec![
            " h", "hi", "i ", " hi", "hi ", " b", "bo", "ob", "b ", " bo", "bob", "ob "
        ]
    );
    assert_eq!(char_wb_ngrams("a", [2, 5]), vec![" a", "a ", " a "]);
    // By Unicode character, not byte.
    assert_eq!(char_wb_ngrams("Été", [3, 3]), vec![" ét", "été", "té "]);
}

#[test]
fn tfidf_char_block_follows_the_words_at_unit_length() {
    let texts = ["sorry sorry", "so sorry", "sorrry", "thanks"];
    let config = TfidfConfig {
        min_df: 2,
        max_terms: 0,
        char_ngrams: Some([2, 3]),
        max_char_terms: 0,
    };
    let t = Tfidf::fit(&texts, &config).unwrap();
    assert_eq!(t.terms, vec!["sorry"]);
    // A misspelling shares character n-grams with the word it misspells.
    assert!(t.char_terms.iter().any(|c| c == "sor"));
    assert_eq!(t.len(), 1 + t.char_terms.len());
    let row = t.transform("sorrry");
    assert!(row.iter().all(|p| p.0 as usize >= t.terms.len()), "{row:?}");
    let norm: f32 = row.iter().map(|p| p.1 * p.1).sum();
    assert!((norm - 1.0).abs() < 1e-5);
    // Both blocks at unit length: squared norm 2.
    let both = t.transform("so sorry");
    let norm: f32 = both.iter().map(|p| p.1 * p.1).sum();
    assert!((norm - 2.0).abs() < 1e-4, "{norm}");
    assert!(both.windows(2).all(|w| w[0].0 < w[1].0));
    // Round trip through JSON gives the same rows; words-only vocabularies omit the block.
    let back: Tfidf = serde_json::from_str::<Tfidf>(&serde_json::to_string(&t).unwrap())
        .unwrap()
        .ready()
        .unwrap();
    assert_eq!(back.transform("so sorrry"), t.transform("so sorrry"));
    let words = Tfidf::fit(
        &texts,
        &TfidfConfig {
            char_ngrams: None,
            ..config
        },
    )
    .unwrap();
    let json = serde_json::to_string(&words).unwrap();
    assert!(!json.contains("char"), "{json}");
    assert!(
        Tfidf::fit(
            &texts,
            &TfidfConfig {
                char_ngrams: Some([3, 2]),
                ..config
            }
        )
        .is_err()
    );
}

/// Labels of `texts` by `model`, as (dimension, value) pairs.
fn trained_labels(
    model: &LabelModel,
    tax: &Taxonomy,
    embedder: Option<&dyn Embedder>,
    texts: &[&str],
) -> Vec<Vec<(String, String, f64)>> {
    let (labels, _) = Labeller::Trained(model)
        .label_texts(tax, embedder, texts)
        .unwrap();
    labels
        .into_iter()
        .map(|ls| {
            ls.into_iter()
                .map(|l| (l.dimension, l.value, l.confidence))
                .collect()
        })
        .collect()
}

#[test]
fn tfidf_model_trains_round_trips_and_labels_the_same() {
    let tax = taxonomy();
    let examples = synthetic_examples(&tax);
    let texts: Vec<&str> = CLEAR.iter().map(|c| c.2).collect();
    let embedder = HashedEmbedder::new(256);
    let dir = tempfile::tempdir().unwrap();
    for with_embedder in [true, false] {
        let config = TrainConfig {
            holdout: 0.2,
            tfidf: Some(TfidfConfig {
                min_df: 1,
                max_terms: 0,
                ..TfidfConfig::default()
            }),
            ..TrainConfig::shipped()
        };
        let e: Option<(&dyn Embedder, &str)> = with_embedder.then_some((&embedder, "hashed"));
        let (model, _) = train_model(&tax, e, &examples, "test", &config, &|_| {}).unwrap();
        let vocab = model.tfidf.as_ref().map_or(0, Tfidf::len);
        assert!(vocab > 100, "{vocab} terms");
        assert_eq!(model.needs_embedder(), with_embedder);
        let path = dir.path().join(format!("model-{with_embedder}.json"));
        model.save(&path).unwrap();
        let raw: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(raw["format"], MODEL_FORMAT);
        assert!(raw["dimensions"][0]["classifier"]["weights"][0].is_string());
        let back = LabelModel::load(&path).unwrap();
        assert_eq!(back, model);
        let emb: Option<&dyn Embedder> = with_embedder.then_some(&embedder as &dyn Embedder);
        let before = trained_labels(&model, &tax, emb, &texts);
        assert_eq!(trained_labels(&back, &tax, emb, &texts), before);
        // It learned the taxonomy's own texts: most get their own value back.
        let train_texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
        let got = trained_labels(&back, &tax, emb, &train_texts);
        let right = examples
            .iter()
            .zip(&got)
            .filter(|(e, g)| {
                e.labels
                    .iter()
                    .all(|(d, v)| g.iter().any(|(gd, gv, _)| gd == d && gv == v))
            })
            .count();
        assert!(
            right * 10 >= examples.len() * 8,
            "{right} of {} (embedder {with_embedder})",
            examples.len()
        );
    }
}

#[test]
fn format_1_models_still_load_and_newer_formats_are_refused() {
    let tax = taxonomy();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.json");
    // A format-1 file as `label train` wrote it before TF-IDF: weights as number lists, no
    // `sparse`, `dense_weight` or `tfidf`.
    let old = serde_json::json!({
        "format": 1,
        "embedder": "hashed",
        "embedder_name": "hashed-2",
        "dim": 2,
        "taxonomy": tax.name,
        "dimensions": [{
            "id": "emotion",
            "classifier": {
                "labels": ["anxious", "angry"],
                "dim": 2,
                "mean": [0.0, 0.0],
                "scale": [1.0, 1.0],
                "weights": [[4.0, -4.0], [-4.0, 4.0]],
                "bias": [0.0, 0.0],
                "thresholds": [0.5, 0.5],
                "heldout_f1": [null, null]
            }
        }],
        "trained_on": "hand-written",
        "examples": 2,
        "config": {"epochs": 12, "learning_rate": 0.01, "l2": 0.0001, "batch": 256,
                   "holdout": 0.15, "balance": true, "seed": 1}
    });
    std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();
    let model = LabelModel::load(&path).unwrap();
    model.check_taxonomy(&tax).unwrap();
    assert!(model.tfidf.is_none());
    let c = &model.dimensions[0].classifier;
    assert_eq!(c.predict(&[1.0, 0.0]).first().map(|p| p.0), Some(0));
    assert_eq!(c.predict(&[0.0, 1.0]).first().map(|p| p.0), Some(1));
    // Saved again, it is a format-2 file that loads to the same model.
    let again = dir.path().join("again.json");
    model.save(&again).unwrap();
    assert_eq!(LabelModel::load(&again).unwrap(), model);

    let mut newer = old;
    newer["format"] = serde_json::json!(3);
    std::fs::write(&path, serde_json::to_vec(&newer).unwrap()).unwrap();
    let err = format!("{:#}", LabelModel::load(&path).unwrap_err());
    assert!(
        err.contains("old.json") && err.contains("format 3") && err.contains("retrain"),
        "{err}"
    );
}
