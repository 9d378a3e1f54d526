use std::collections::BTreeMap;

use aligndata_core::{Label, Record, SourceKind, Taxonomy};
use aligndata_dataset::{Dataset, DatasetWriter, ManifestFields, WriterOptions};
use aligndata_models::embed::{Embedder, HashedEmbedder};

use super::*;

const TAXONOMY: &str = "
name: t
dimensions:
  - id: topic
    values:
      - id: work
        description: work things
      - id: school
        description: school things
      - id: home
        description: home things
  - id: mood
    values:
      - id: anxious
        description: anxious
      - id: sad
        description: sad
";

fn taxonomy() -> Taxonomy {
    Taxonomy::parse(TAXONOMY, "t.yaml").expect("test taxonomy parses")
}

fn embed(texts: &[String]) -> Vec<f32> {
    let e = HashedEmbedder::default();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    e.embed(&refs).unwrap().into_iter().flatten().collect()
}

fn similar_sentences(n: usize) -> Vec<String> {
    let subjects = [
        "my manager",
        "my teacher",
        "my sister",
        "my friend",
        "my coach",
        "my partner",
    ];
    let verbs = ["criticised", "ignored", "praised", "questioned", "doubted"];
    let objects = [
        "my report",
        "my essay",
        "my cooking",
        "my plan",
        "my drawing",
        "my talk",
        "my idea",
    ];
    (0..n)
        .map(|i| {
            format!(
                "I feel like {} {} {} today and I keep thinking about it",
                subjects[i % subjects.len()],
                verbs[(i / 3) % verbs.len()],
                objects[(i / 7) % objects.len()]
            )
        })
        .collect()
}

#[test]
fn planted_outlier_gets_the_top_score_and_the_flag() {
    let mut texts = similar_sentences(40);
    texts.insert(17, "zq8#kk vbnw0x plöj ttt 77 ##xx qwrrk mmn".to_string());
    let rows = embed(&texts);
    let dim = HashedEmbedder::default().dim();
    let t = taxonomy();
    let cells = vec![None; texts.len()];
    for method in [OutlierMethod::Knn, OutlierMethod::Lof] {
        let mut config = SelectConfig {
            budget: 5,
            ..SelectConfig::default()
        };
        config.outlier.method = method;
        config.outlier.search.k = 5;
        let d = decide(Rows { data: &rows, dim }, &cells, &t, &config).unwrap();
        let top = (0..texts.len())
            .max_by(|&a, &b| d.scores[a].total_cmp(&d.scores[b]))
            .unwrap();
        assert_eq!(top, 17, "{method:?}: {:?}", d.scores);
        assert!(d.outlier[17]);
        assert_eq!(d.summary.outliers, 1, "{method:?}");
        assert_eq!(d.percentiles[17], 100.0);
    }
    let reason = outlier_reason(OutlierMethod::Knn, 5, 0.62, 99.1);
    assert_eq!(
        reason,
        "knn distance 0.62 (mean cosine distance to 5 nearest), 99.1th percentile"
    );
}

#[test]
fn sampled_reference_still_finds_the_planted_outlier() {
    let mut texts = similar_sentences(300);
    texts.push("zq8#kk vbnw0x plöj ttt 77 ##xx qwrrk mmn".to_string());
    let rows = embed(&texts);
    let dim = HashedEmbedder::default().dim();
    let search = SearchConfig {
        k: 5,
        brute_force_limit: 100,
        reference_size: 80,
        seed: 3,
    };
    let nb = knn(Rows { data: &rows, dim }, &search);
    assert_eq!(nb.reference.as_ref().map(Vec::len), Some(80));
    let scores = knn_scores(&nb);
    let top = (0..texts.len())
        .max_by(|&a, &b| scores[a].total_cmp(&scores[b]))
        .unwrap();
    assert_eq!(top, 300);
}

#[test]
fn quotas_sum_to_the_budget_and_respect_caps() {
    assert_eq!(allocate(&[100, 100, 100], &[1.0; 3], 30), vec![10, 10, 10]);
    // A short cell gives its leftover to the others.
    assert_eq!(allocate(&[2, 100, 100], &[1.0; 3], 30), vec![2, 14, 14]);
    // Rounding: the sum is exact, ties go to the earlier cell.
    let q = allocate(&[50, 50, 50], &[1.0; 3], 31);
    assert_eq!(q.iter().sum::<usize>(), 31);
    assert_eq!(q, vec![11, 10, 10]);
    // Weights.
    assert_eq!(allocate(&[100, 100], &[3.0, 1.0], 40), vec![30, 10]);
    // Not enough: everything.
    assert_eq!(allocate(&[3, 4], &[1.0, 1.0], 100), vec![3, 4]);
    assert_eq!(allocate(&[], &[], 10), Vec::<usize>::new());
    // Zero weights fall back to something that still fills the budget.
    assert_eq!(allocate(&[5, 5], &[0.0, 0.0], 4).iter().sum::<usize>(), 4);
}

/// Texts per cell with a cell-specific vocabulary, uneven sizes (one cell short).
fn pool() -> (Vec<String>, Vec<Option<Cell>>) {
    let topics = ["work", "school", "home"];
    let moods = ["anxious", "sad"];
    let sizes = [[40, 35], [30, 3], [25, 45]];
    let mut texts = Vec::new();
    let mut cells = Vec::new();
    let base = similar_sentences(60);
    for (ti, t) in topics.iter().enumerate() {
        for (mi, m) in moods.iter().enumerate() {
            for j in 0..sizes[ti][mi] {
                texts.push(format!(
                    "{t} {m}: {} ({j})",
                    base[(j * 7 + ti * 3 + mi) % base.len()]
                ));
                cells.push(Some(Cell(vec![ti, mi])));
            }
        }
    }
    texts.push(format!("work sad: {} (unlabelled)", base[0]));
    cells.push(None);
    (texts, cells)
}

#[test]
fn selection_meets_budget_balances_covers_and_is_deterministic() {
    let (texts, cells) = pool();
    let rows = embed(&texts);
    let dim = HashedEmbedder::default().dim();
    let t = taxonomy();
    let mut config = SelectConfig {
        budget: 60,
        ..SelectConfig::default()
    };
    config.outlier.percentile = 99.5;
    let d = decide(Rows { data: &rows, dim }, &cells, &t, &config).unwrap();
    let s = &d.summary;
    assert_eq!(s.selected, 60, "{s:#?}");
    assert_eq!(d.selected.iter().filter(|&&x| x).count(), 60);
    // The short cell (3 records) gives everything it has; the others share the rest evenly.
    assert_eq!(
        s.short_cells,
        vec!["topic=school|mood=sad".to_string()],
        "{s:#?}"
    );
    let ratio = s.balance_ratio.unwrap();
    assert!(ratio <= 12.0 / 11.0 + 1e-9, "{ratio} {s:#?}");
    for c in &s.cells {
        assert!(c.selected <= c.available && c.selected == c.quota);
    }
    // Every value present is covered, and the unlabelled record is not selected.
    assert!(s.values_missing_from_selection.is_empty(), "{s:#?}");
    assert_eq!(s.unlabelled, 1);
    assert!(!d.selected[texts.len() - 1]);
    assert!(s.coverage.iter().all(|v| v.selected > 0));
    // Outliers are never selected.
    assert!((0..texts.len()).all(|i| !(d.outlier[i] && d.selected[i])));
    // The trade-off slides from representative (more alike than random) to diverse (less).
    let sim_at = |lambda: f64| {
        let mut c = config.clone();
        c.diverse.tradeoff = lambda;
        let d = decide(Rows { data: &rows, dim }, &cells, &t, &c).unwrap();
        let div = d.summary.diversity;
        (
            div.selected_mean_similarity.unwrap(),
            div.random_mean_similarity.unwrap(),
        )
    };
    let ((rep, rnd), (div, _)) = (sim_at(0.0), sim_at(1.0));
    assert!(
        div < rnd && div < rep,
        "diverse {div} random {rnd} representative {rep}"
    );

    // Deterministic for a seed; with cells bigger than the candidate limit the seed matters.
    let again = decide(Rows { data: &rows, dim }, &cells, &t, &config).unwrap();
    assert_eq!(again.selected, d.selected);
    let mut small = config.clone();
    small.diverse.candidate_limit = 5;
    small.diverse.represent_limit = 5;
    let a = decide(Rows { data: &rows, dim }, &cells, &t, &small).unwrap();
    let b = decide(Rows { data: &rows, dim }, &cells, &t, &small).unwrap();
    assert_eq!(a.selected, b.selected);
    assert_eq!(a.summary.selected, 60);

    // Including the unlabelled bucket lets it take a share.
    let mut with = config.clone();
    with.include_unlabelled = true;
    let w = decide(Rows { data: &rows, dim }, &cells, &t, &with).unwrap();
    assert!(w.selected[texts.len() - 1]);
    assert_eq!(w.summary.selected, 60);
}

#[test]
fn labels_win_over_intended_and_unknown_values_are_unlabelled() {
    let t = taxonomy();
    let mut r = Record::new(SourceKind::Synthetic, "x".into());
    r.intended = BTreeMap::from([
        ("topic".to_string(), "work".to_string()),
        ("mood".to_string(), "sad".to_string()),
    ]);
    assert_eq!(t.cell_key(&cell_of(&r, &t).unwrap()), "topic=work|mood=sad");
    r.labels.push(Label {
        dimension: "topic".into(),
        value: "home".into(),
        confidence: 0.9,
        method: "prototype".into(),
    });
    r.labels.push(Label {
        dimension: "topic".into(),
        value: "school".into(),
        confidence: 0.4,
        method: "prototype".into(),
    });
    assert_eq!(t.cell_key(&cell_of(&r, &t).unwrap()), "topic=home|mood=sad");
    r.labels.push(Label {
        dimension: "mood".into(),
        value: "angry".into(),
        confidence: 0.99,
        method: "llm".into(),
    });
    assert!(
        cell_of(&r, &t)
            .unwrap_err()
            .contains("unknown value `angry`")
    );
    let bare = Record::new(SourceKind::Real, "y".into());
    assert!(
        cell_of(&bare, &t)
            .unwrap_err()
            .contains("no label for dimension `topic`")
    );
}

#[test]
fn stage_writes_the_selection_or_everything_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    let (texts, cells) = pool();
    let t = taxonomy();
    let mut writer = DatasetWriter::create(&input, WriterOptions::default()).unwrap();
    for (i, (text, cell)) in texts.iter().zip(&cells).enumerate() {
        let mut r = Record::new(SourceKind::Real, text.clone());
        if let Some(c) = cell {
            for (d, dim) in t.dimensions.iter().enumerate() {
                r.labels.push(Label {
                    dimension: dim.id.clone(),
                    value: dim.values[c.0[d]].id.clone(),
                    confidence: 0.8,
                    method: "prototype".into(),
                });
            }
        }
        if i == 5 {
            r.flag("duplicate", "exact duplicate of something".into());
        }
        writer.push(&r).unwrap();
    }
    writer
        .finish(ManifestFields {
            stage: "test".into(),
            ..ManifestFields::default()
        })
        .unwrap();

    let embedder = HashedEmbedder::default();
    let config = SelectConfig {
        budget: 30,
        ..SelectConfig::default()
    };
    let out = dir.path().join("out");
    let s = select(&input, &out, &t, &config, &embedder, &|_, _| {}).unwrap();
    assert_eq!(s.records, texts.len() as u64);
    assert_eq!(s.excluded_by_flag.get("duplicate"), Some(&1));
    assert_eq!(s.selected, 30);
    assert_eq!(s.written, 30);
    let written: Vec<Record> = Dataset::open(&out)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(written.len(), 30);
    assert!(
        written
            .iter()
            .all(|r| r.flags.is_empty() && r.score(OUTLIER_FLAG).is_some())
    );

    let all = SelectConfig {
        keep_all: true,
        ..config
    };
    let s2 = select(&input, &out, &t, &all, &embedder, &|_, _| {}).unwrap();
    let written: Vec<Record> = Dataset::open(&out)
        .unwrap()
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(written.len(), texts.len());
    assert_eq!(s2.written, texts.len() as u64);
    let flagged = |kind: &str| {
        written
            .iter()
            .filter(|r| r.flags.iter().any(|f| f.kind == kind))
            .count() as u64
    };
    assert_eq!(
        flagged(NOT_SELECTED_FLAG) + flagged(OUTLIER_FLAG),
        s2.eligible - 30
    );
    assert_eq!(flagged(OUTLIER_FLAG), s2.outliers);
    assert!(
        s2.top_outliers
            .iter()
            .all(|o| !o.excerpt.is_empty() && o.reason.contains("percentile"))
    );
    // Re-running on its own output decides afresh instead of stacking flags.
    let again = dir.path().join("again");
    let s3 = select(&out, &again, &t, &all, &embedder, &|_, _| {}).unwrap();
    assert_eq!(s3.eligible, s2.eligible);
    assert_eq!(s3.selected, 30);
}

/// Deterministic pseudo-random unit rows (xorshift), so the tests need no embedder.
fn random_rows(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut data = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let row: Vec<f32> = (0..dim).map(|_| next()).collect();
        let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
        data.extend(row.iter().map(|x| x / norm));
    }
    data
}

#[test]
fn gemm_neighbours_match_a_plain_scan_of_every_pair() {
    // Sizes that do not divide the 256 × 1024 blocks, and a width that is not a multiple of 8.
    let (n, dim, k) = (1300, 37, 7);
    let data = random_rows(n, dim, 9);
    let rows = Rows { data: &data, dim };
    let nb = knn(
        rows,
        &SearchConfig {
            k,
            ..SearchConfig::default()
        },
    );
    for q in [0, 1, 255, 256, 700, 1299] {
        let mut all: Vec<(f32, usize)> = (0..n)
            .filter(|&j| j != q)
            .map(|j| {
                let dot: f32 = rows
                    .row(q)
                    .iter()
                    .zip(rows.row(j))
                    .map(|(a, b)| a * b)
                    .sum();
                (1.0 - dot, j)
            })
            .collect();
        all.sort_by(|a, b| a.0.total_cmp(&b.0));
        let got: Vec<usize> = nb.idx[q * k..(q + 1) * k]
            .iter()
            .map(|&j| j as usize)
            .collect();
        let want: Vec<usize> = all[..k].iter().map(|&(_, j)| j).collect();
        assert_eq!(got, want, "row {q}");
        for (slot, &(d, _)) in all[..k].iter().enumerate() {
            assert!(
                (nb.dist[q * k + slot] - d).abs() < 1e-5,
                "row {q} slot {slot}"
            );
        }
    }
}

/// The plain greedy, every gain recomputed at every step: what the lazy one must reproduce.
fn plain_greedy(cand: Rows<'_>, rep: Rows<'_>, quota: usize, lambda: f64) -> Vec<usize> {
    let s = rep.len();
    // The same similarity values the stage computes (one GEMM), so gains are bit-identical.
    let mut matrix = vec![0f32; cand.len() * s];
    dot_matrix(cand, rep, &mut matrix);
    let sim = |c: usize, r: usize| -> f32 { matrix[c * s + r] };
    let mut best = vec![0f32; s];
    let mut min_dist = vec![2f32; cand.len()];
    let mut picked: Vec<usize> = Vec::new();
    for _ in 0..quota {
        let mut top: Option<(f64, usize)> = None;
        for c in (0..cand.len()).filter(|c| !picked.contains(c)) {
            let fl: f32 = (0..s).map(|r| (sim(c, r) - best[r]).max(0.0)).sum();
            let gain = (1.0 - lambda) * fl as f64 / s as f64 + lambda * min_dist[c] as f64 / 2.0;
            if top.is_none_or(|(g, _)| gain > g) {
                top = Some((gain, c));
            }
        }
        let (_, c) = top.unwrap();
        picked.push(c);
        for (r, b) in best.iter_mut().enumerate() {
            *b = b.max(sim(c, r));
        }
        for (o, d) in min_dist.iter_mut().enumerate() {
            *d = d.min(1.0 - outlier::dot(cand.row(c), cand.row(o)));
        }
    }
    picked
}

#[test]
fn lazy_greedy_picks_exactly_what_the_plain_greedy_picks() {
    let dim = 24;
    let cand = random_rows(300, dim, 5);
    let rep = random_rows(120, dim, 6);
    let (cand, rep) = (Rows { data: &cand, dim }, Rows { data: &rep, dim });
    for lambda in [0.0, 0.3, 0.7, 1.0] {
        let lazy = pick_among(cand, rep, 40, lambda);
        let plain = plain_greedy(cand, rep, 40, lambda);
        assert_eq!(lazy, plain, "λ={lambda}");
    }
}

#[test]
fn past_the_limit_embeddings_spill_to_disk_and_decide_the_same() {
    let (texts, cells) = pool();
    let rows = embed(&texts);
    let dim = HashedEmbedder::default().dim();
    let t = taxonomy();
    for method in [OutlierMethod::Knn, OutlierMethod::Lof] {
        let mut config = SelectConfig {
            budget: 40,
            ..SelectConfig::default()
        };
        config.outlier.method = method;
        config.outlier.search.brute_force_limit = 50;
        config.outlier.search.reference_size = 60;
        config.diverse.candidate_limit = 20;
        config.diverse.represent_limit = 15;

        let dir = tempfile::tempdir().unwrap();
        let mut store = SpillWriter::new(dim, 50, dir.path());
        for row in rows.chunks(dim) {
            store.push(row).unwrap();
        }
        let Stored::Spilled(spill) = store.finish().unwrap() else {
            panic!("{} rows past a limit of 50 stayed in memory", texts.len());
        };
        assert_eq!(spill.len(), texts.len());
        assert_eq!(spill.read_block(3, 2).unwrap(), rows[3 * dim..5 * dim]);
        assert_eq!(spill.fetch(&[7, 1]).unwrap()[dim..], rows[dim..2 * dim]);

        let on_disk = decide_spilled(&spill, &cells, &t, &config, &|_, _| {}).unwrap();
        let in_memory = decide(Rows { data: &rows, dim }, &cells, &t, &config).unwrap();
        assert_eq!(on_disk.summary.outlier_search, "reference sample of 60");
        for (a, b) in on_disk.scores.iter().zip(&in_memory.scores) {
            assert!((a - b).abs() < 1e-4, "{method:?}: {a} vs {b}");
        }
        assert_eq!(on_disk.outlier, in_memory.outlier, "{method:?}");
        assert_eq!(on_disk.selected, in_memory.selected, "{method:?}");
        assert_eq!(on_disk.summary.selected, 40);
    }
    // Within the limit nothing touches the disk.
    let dir = tempfile::tempdir().unwrap();
    let mut store = SpillWriter::new(dim, 1000, dir.path());
    for row in rows.chunks(dim) {
        store.push(row).unwrap();
    }
    assert!(matches!(store.finish().unwrap(), Stored::Memory(v) if v == rows));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
