use std::path::Path;
use std::sync::Mutex;

use aligndata_dataset::{Dataset, DatasetWriter, ManifestFields, WriterOptions};
use aligndata_models::embed::HashedEmbedder;
use aligndata_models::llm::{Completion, Usage};

use super::*;
use crate::plan::{PlanConfig, build_plan};

fn taxonomy() -> Taxonomy {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/self-doubt/taxonomy.yaml");
    Taxonomy::load(&path).expect("example taxonomy")
}

fn personas() -> PersonaSpace {
    PersonaSpace::parse(prompt::DEFAULT_PERSONA, "persona.yaml").expect("persona file")
}

fn cells(t: &Taxonomy, count: u64) -> Vec<(Cell, u64)> {
    build_plan(
        t,
        &PlanConfig {
            count,
            ..Default::default()
        },
    )
    .expect("plan")
    .resolve(t)
    .expect("resolve")
}

fn read(dir: &Path) -> Vec<Record> {
    Dataset::open(dir)
        .expect("open")
        .records()
        .map(|r| r.expect("record"))
        .collect()
}

#[test]
fn template_backend_fills_200_with_provenance_and_is_deterministic() {
    let t = taxonomy();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = cells(&t, 200);
    let emb = HashedEmbedder::default();
    let cfg = GenerateConfig {
        seed: 42,
        ..Default::default()
    };
    let run = |name: &str| {
        let out = tmp.path().join(name);
        let s = generate(
            &t,
            &plan,
            &personas(),
            &Backend::Template,
            None,
            Some(&emb),
            &cfg,
            &out,
            &|_, _| {},
        )
        .expect("generate");
        (s, read(&out))
    };
    let (s, recs) = run("a");
    assert_eq!(s.planned, 200);
    assert!(
        s.accepted >= 190,
        "accepted {} short {:?}",
        s.accepted,
        s.short
    );
    let kept: Vec<&Record> = recs.iter().filter(|r| r.is_kept()).collect();
    assert_eq!(kept.len() as u64, s.accepted);
    for r in &kept {
        assert_eq!(r.intended.len(), t.dimensions.len());
        let key = t
            .dimensions
            .iter()
            .map(|d| format!("{}={}", d.id, r.intended[&d.id]))
            .collect::<Vec<_>>()
            .join("|");
        let cell = t.parse_cell_key(&key).expect("intended is a cell");
        assert!(t.is_allowed(&cell));
        assert!(
            r.provenance
                .persona
                .as_deref()
                .is_some_and(|p| p.contains("style:"))
        );
        assert_eq!(r.provenance.seed, Some(42));
        assert!(r.provenance.attempt.is_some());
        assert!(!r.text.is_empty());
    }
    assert!(s.diversity.overall.vendi.is_some());
    let (s2, recs2) = run("b");
    assert_eq!(s.accepted, s2.accepted);
    assert_eq!(recs, recs2, "same seed, same dataset");
}

/// A backend that always says the same thing, wrapped in chat noise.
struct Parrot {
    calls: Mutex<u64>,
}

impl Llm for Parrot {
    fn model_id(&self) -> &str {
        "parrot"
    }
    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &anyhow::Result<Completion>),
    ) -> Vec<anyhow::Result<Completion>> {
        let mut out = Vec::new();
        for (i, _) in requests.iter().enumerate() {
            let mut n = self.calls.lock().expect("lock");
            *n += 1;
            let text = match *n % 3 {
                0 => "Sure! Here is a message:\n\"I always mess up everything I try at work.\""
                    .to_string(),
                1 => "I'm sorry, but I can't help with that request.".to_string(),
                _ => "I always mess up everything I try at work".to_string(),
            };
            let r = Ok(Completion {
                text,
                finish_reason: FinishReason::Stop,
                usage: Usage::default(),
                cached: false,
            });
            on_result(i, &r);
            out.push(r);
        }
        out
    }
}

#[test]
fn a_repeating_backend_cannot_fill_a_cell_with_copies() {
    let t = taxonomy();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan: Vec<(Cell, u64)> = cells(&t, 3).into_iter().map(|(c, _)| (c, 5)).collect();
    let llm = Parrot {
        calls: Mutex::new(0),
    };
    let template = PromptTemplate::load(None, PromptKind::Instruction).expect("template");
    let backend = Backend::Model {
        llm: &llm,
        template,
    };
    let cfg = GenerateConfig {
        attempts_per_input: 2,
        ..Default::default()
    };
    let out = tmp.path().join("o");
    let s = generate(
        &t,
        &plan,
        &personas(),
        &backend,
        None,
        None,
        &cfg,
        &out,
        &|_, _| {},
    )
    .expect("generate");
    assert_eq!(s.accepted, 1, "{s:?}");
    assert_eq!(s.attempts, 30);
    assert!(s.rejected["near-duplicate"] > 0);
    assert!(s.rejected["refusal"] > 0);
    assert_eq!(
        s.parse_fixes.get("preamble").copied(),
        Some(s.parse_fixes["quotes"])
    );
    assert_eq!(s.short.len(), 3);
    let recs = read(&out);
    assert_eq!(recs.len(), 30, "every attempt is kept");
    let dup = recs
        .iter()
        .find(|r| r.flags.iter().any(|f| f.kind == "near-duplicate"))
        .expect("dup");
    let keeper = recs.iter().find(|r| r.is_kept()).expect("keeper");
    assert_eq!(dup.flags[0].other_id.as_deref(), Some(keeper.id.as_str()));
    assert!(recs.iter().all(|r| {
        r.provenance
            .template
            .as_deref()
            .is_some_and(|t| t.starts_with("instruction.j2#"))
    }));
    assert!(recs.iter().all(|r| r.provenance.prompt_hash.is_some()));
}

/// A checker that agrees on every dimension except one.
struct HalfRight;

impl CellChecker for HalfRight {
    fn name(&self) -> &str {
        "half-right"
    }
    fn detect(&self, texts: &[&str]) -> Result<Vec<Detected>> {
        Ok(texts
            .iter()
            .enumerate()
            .map(|(i, _)| {
                let mut d = Detected::new();
                d.insert("risk".into(), "none".into());
                if i % 2 == 0 {
                    d.insert("emotion".into(), "nonsense".into());
                }
                d
            })
            .collect())
    }
}

#[test]
fn checker_agreement_is_recorded_and_can_reject() {
    let t = taxonomy();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = cells(&t, 40);
    for reject in [false, true] {
        let cfg = GenerateConfig {
            reject_disagreeing: reject,
            ..Default::default()
        };
        let out = tmp.path().join(format!("o{reject}"));
        let s = generate(
            &t,
            &plan,
            &personas(),
            &Backend::Template,
            Some(&HalfRight),
            None,
            &cfg,
            &out,
            &|_, _| {},
        )
        .expect("generate");
        let ag = s.agreement.expect("agreement");
        assert_eq!(ag["emotion"].rate, 0.0);
        assert!(ag["risk"].checked > 0);
        assert!(!ag.contains_key("theme"));
        if reject {
            assert!(s.rejected.get("off-cell").copied().unwrap_or(0) > 0);
        }
    }
}

#[test]
fn continuation_prompt_renders_taxonomy_examples() {
    let t = taxonomy();
    let template = PromptTemplate::load(None, PromptKind::Continuation).expect("template");
    let cell = t.allowed_cells().next().expect("cell");
    let mut rng = Rng::new(1, "x", 0);
    let persona = personas().sample(&mut rng);
    let p = template
        .render(&t, &cell, &persona, 8, &mut rng)
        .expect("render");
    let last = p.trim_end().lines().last().expect("line");
    assert!(
        last.starts_with('[') && last.contains(&t.dimensions[0].id),
        "{p}"
    );
    let short = template
        .render(&t, &cell, &persona, 3, &mut rng)
        .expect("render");
    let tagged = |p: &str| p.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(
        tagged(&short),
        3 + 1,
        "three example lines and the open one: {short}"
    );
    assert_eq!(tagged(&p), 8 + 1, "{p}");
    let example = &t.cell_value(&cell, 0).expect("value").examples;
    assert!(p.matches('\n').count() > 5);
    assert!(!example.is_empty());
    let instr = PromptTemplate::load(None, PromptKind::Instruction).expect("template");
    let p = instr
        .render(&t, &cell, &persona, 8, &mut rng)
        .expect("render");
    assert!(
        p.contains(&t.cell_value(&cell, 0).expect("v").description[..20]),
        "{p}"
    );
}

/// A model whose every answer is new: words drawn from the request's seed. Counts requests.
struct Counter {
    calls: Mutex<u64>,
}

impl Llm for Counter {
    fn model_id(&self) -> &str {
        "counter"
    }
    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &anyhow::Result<Completion>),
    ) -> Vec<anyhow::Result<Completion>> {
        let mut out = Vec::new();
        for (i, req) in requests.iter().enumerate() {
            *self.calls.lock().expect("lock") += 1;
            let mut rng = Rng::new(req.seed, "counter", 0);
            let words: Vec<String> = (0..8)
                .map(|_| format!("{:x}", rng.next_u64() >> 40))
                .collect();
            let r = Ok(Completion {
                text: format!("Lately I keep thinking about {}.", words.join(" ")),
                finish_reason: FinishReason::Stop,
                usage: Usage::default(),
                cached: false,
            });
            on_result(i, &r);
            out.push(r);
        }
        out
    }
}

/// A checker that agrees with everything, and fails on its `fail_at`-th call: a crash mid-run.
struct Crashing {
    calls: Mutex<u64>,
    fail_at: u64,
}

impl CellChecker for Crashing {
    fn name(&self) -> &str {
        "crashing"
    }
    fn detect(&self, texts: &[&str]) -> Result<Vec<Detected>> {
        let mut n = self.calls.lock().expect("lock");
        *n += 1;
        if *n == self.fail_at {
            bail!("simulated crash");
        }
        Ok(texts.iter().map(|_| Detected::new()).collect())
    }
}

#[test]
fn an_interrupted_run_resumes_without_asking_the_model_again() {
    let t = taxonomy();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = cells(&t, 40);
    let out = tmp.path().join("out");
    let work = checkpoint::work_dir(&out);
    let cfg = GenerateConfig {
        batch: 8,
        checkpoint: Some(work.clone()),
        ..Default::default()
    };
    let template = || PromptTemplate::load(None, PromptKind::Instruction).expect("template");
    let run = |fail_at: u64| {
        let llm = Counter {
            calls: Mutex::new(0),
        };
        let backend = Backend::Model {
            llm: &llm,
            template: template(),
        };
        let checker = Crashing {
            calls: Mutex::new(0),
            fail_at,
        };
        let s = generate(
            &t,
            &plan,
            &personas(),
            &backend,
            Some(&checker),
            None,
            &cfg,
            &out,
            &|_, _| {},
        );
        let calls = *llm.calls.lock().expect("lock");
        (s, calls)
    };
    // Dies in the third batch: two batches (16 attempts) are in the log.
    let (crashed, calls) = run(3);
    assert!(crashed.is_err());
    assert_eq!(calls, 24);
    assert!(!out.exists(), "no half dataset");
    let logged: Vec<Record> = std::fs::read_to_string(work.join(checkpoint::CHECKPOINT_FILE))
        .expect("log")
        .lines()
        .skip(1)
        .map(|l| {
            serde_json::from_str::<checkpoint::Entry>(l)
                .expect("entry")
                .r
        })
        .collect();
    assert_eq!(logged.len(), 16);

    let (s, calls) = run(0);
    let s = s.expect("resumed run");
    assert_eq!(s.accepted, 40);
    assert_eq!(s.resumed_attempts, 16);
    assert_eq!(s.resumed_accepted, 16);
    assert_eq!(calls, s.attempts - 16, "only the remainder is asked for");
    let recs = read(&out);
    assert_eq!(recs.len() as u64, s.records);
    assert_eq!(
        &recs[..16],
        &logged[..],
        "the logged attempts are kept as they were"
    );
    assert!(s.agreement.is_some());
    assert!(
        !work.exists(),
        "the work directory goes once the dataset is in place"
    );
}

fn write_dataset(dir: &Path, texts: &[&str]) -> Vec<String> {
    let mut w = DatasetWriter::create(dir, WriterOptions::default()).expect("writer");
    let mut ids = Vec::new();
    for t in texts {
        let r = Record::new(SourceKind::Real, t.to_string());
        ids.push(r.id.clone());
        w.push(&r).expect("push");
    }
    w.finish(ManifestFields::default()).expect("finish");
    ids
}

#[test]
fn against_rejects_a_planted_near_copy_naming_the_matched_record() {
    let t = taxonomy();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = cells(&t, 30);
    let emb = HashedEmbedder::default();
    let run = |name: &str, cfg: &GenerateConfig| {
        let out = tmp.path().join(name);
        let s = generate(
            &t,
            &plan,
            &personas(),
            &Backend::Template,
            None,
            Some(&emb),
            cfg,
            &out,
            &|_, _| {},
        )
        .expect("generate");
        (s, read(&out))
    };
    let (_, first) = run("first", &GenerateConfig::default());
    let target = first
        .iter()
        .find(|r| r.is_kept())
        .expect("accepted")
        .clone();
    // Real data holding a lightly edited copy of that input, among unrelated texts.
    let real = tmp.path().join("real");
    let ids = write_dataset(
        &real,
        &[
            "The bus was late again and I missed the start of my shift.",
            &format!("Honestly, {} That is all there is to it.", target.text),
            "Does anyone know a good recipe for lentil soup?",
        ],
    );
    for (kind, cfg) in [
        (
            "near-duplicate",
            GenerateConfig {
                against: vec![real.clone()],
                ..Default::default()
            },
        ),
        (
            "semantic-duplicate",
            GenerateConfig {
                against: vec![real.clone()],
                near_threshold: 0.999,
                semantic_threshold: Some(0.85),
                ..Default::default()
            },
        ),
    ] {
        let (s, recs) = run(kind, &cfg);
        assert_eq!(s.against_records, 3);
        let hit = recs
            .iter()
            .find(|r| r.text == target.text)
            .expect("the same attempt again");
        assert_eq!(hit.flags.len(), 1, "{hit:?}");
        assert_eq!(hit.flags[0].kind, kind);
        assert_eq!(hit.flags[0].other_id.as_deref(), Some(ids[1].as_str()));
        assert!(
            hit.flags[0].reason.contains("real"),
            "{}",
            hit.flags[0].reason
        );
        assert_eq!(s.accepted, 30, "the cell retried: {:?}", s.short);
    }
}

#[test]
fn novelty_is_scored_and_min_novelty_is_respected() {
    let t = taxonomy();
    let tmp = tempfile::tempdir().expect("tmp");
    let plan = cells(&t, 120);
    let emb = HashedEmbedder::default();
    let run = |name: &str, min_novelty: Option<f64>| {
        let out = tmp.path().join(name);
        let cfg = GenerateConfig {
            min_novelty,
            attempts_per_input: 8,
            ..Default::default()
        };
        let s = generate(
            &t,
            &plan,
            &personas(),
            &Backend::Template,
            None,
            Some(&emb),
            &cfg,
            &out,
            &|_, _| {},
        )
        .expect("generate");
        (s, read(&out))
    };
    let novelty = |r: &Record| {
        r.scores
            .iter()
            .find(|s| s.name == NOVELTY_SCORE)
            .map(|s| s.value)
    };
    let (free, recs) = run("free", None);
    let scores: Vec<f64> = recs
        .iter()
        .filter(|r| r.is_kept())
        .map(|r| novelty(r).expect("every accepted input has a novelty score"))
        .collect();
    assert_eq!(scores.len() as u64, free.accepted);
    let summary = free.novelty.expect("novelty summary");
    assert_eq!(summary.scored, free.accepted);
    assert_eq!(
        summary.first, 1,
        "only the very first had nothing to compare with"
    );
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    // A threshold at the unconstrained median must reject some and bind every accepted one.
    let x = summary.p50;
    let (strict, recs) = run("strict", Some(x));
    let low: Vec<&Record> = recs
        .iter()
        .filter(|r| r.flags.iter().any(|f| f.kind == "low-novelty"))
        .collect();
    assert!(!low.is_empty());
    assert_eq!(strict.rejected["low-novelty"], low.len() as u64);
    for r in &low {
        assert!(novelty(r).expect("scored") < x);
        assert!(r.flags[0].other_id.is_some());
    }
    for r in recs.iter().filter(|r| r.is_kept()) {
        assert!(novelty(r).expect("scored") >= x);
    }
    assert!(strict.novelty.expect("summary").min >= x);
}
