use std::path::Path;
use std::sync::Mutex;

use aligndata_dataset::Dataset;
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
        .render(&t, &cell, &persona, &mut rng)
        .expect("render");
    let last = p.trim_end().lines().last().expect("line");
    assert!(
        last.starts_with('[') && last.contains(&t.dimensions[0].id),
        "{p}"
    );
    let example = &t.cell_value(&cell, 0).expect("value").examples;
    assert!(p.matches('\n').count() > 5);
    assert!(!example.is_empty());
    let instr = PromptTemplate::load(None, PromptKind::Instruction).expect("template");
    let p = instr.render(&t, &cell, &persona, &mut rng).expect("render");
    assert!(
        p.contains(&t.cell_value(&cell, 0).expect("v").description[..20]),
        "{p}"
    );
}
