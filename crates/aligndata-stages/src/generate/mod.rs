//! `generate`: synthetic inputs for the plan's cells — controlled, diverse, checked.
//!
//! Why it works the way it does:
//! - **Control**: a [`Plan`](crate::plan::Plan) gives each cell a quota; every attempt is asked
//!   for one cell, and the record's `intended` field is that cell.
//! - **Diversity**: each attempt samples a persona and a style ([`persona`]) and gets its own
//!   seed derived from (run seed, cell, attempt number), so runs are reproducible whatever the
//!   batching. Candidates are checked against everything accepted so far for exact and near
//!   duplicates ([`near`]); the figures at the end ([`crate::diversity`]) say how varied the
//!   result really is.
//! - **Verified**: an optional [`CellChecker`] (the labeller, from another stage) says what the
//!   accepted text actually expresses; agreement with the intended cell is counted per
//!   dimension, and with `reject_disagreeing` a miss is set aside.
//! - **Nothing silently dropped**: every attempt is written; rejected ones carry a flag whose
//!   kind is the reason (`refusal`, `truncated`, `empty`, `too-short`, `near-duplicate`,
//!   `off-cell`, `backend-error`).
//!
//! Rounds: each round asks, for every cell still short of its quota and within its attempt
//! budget (`quota × attempts_per_input`), for as many attempts as it still needs, in batches of
//! `batch` attempts (the local model decodes a batch together; the OpenAI client keeps it in
//! flight). Results are judged in a fixed order (cell order, then attempt), so the output does
//! not depend on which completion finished first.
//!
//! - **Existing data**: `against` datasets (real data, earlier rounds) are indexed before the
//!   first attempt, so a candidate too close to them is rejected like one too close to an input
//!   accepted in this run; the flag names the matched record and where it came from.
//! - **Meaning, not only wording**: with an embedder, every candidate that passes MinHash is
//!   embedded and compared with everything known ([`novelty`]); its novelty (1 − cosine to the
//!   nearest) is stored in `scores`, `semantic_threshold` rejects near-copies in meaning
//!   (`semantic-duplicate`) and `min_novelty` inputs that add nothing (`low-novelty`).
//! - **Resume**: each judged batch is appended to a log ([`checkpoint`]) before the next one
//!   starts; a rerun with the same settings replays it and generates only the remainder.

pub mod checkpoint;
pub mod near;
pub mod novelty;
pub mod parse;
pub mod persona;
pub mod prompt;
pub mod rng;
pub mod template_gen;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::Serialize;

use aligndata_core::{Cell, Record, Score, SourceKind, Taxonomy};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::embed::Embedder;
use aligndata_models::llm::{CompletionRequest, FinishReason, Llm};

use crate::diversity::{self, DiversityReport};
use checkpoint::{Checkpoint, Entry};
use near::{Match, NearDupIndex};
use novelty::{NoveltySummary, SemanticIndex};
use parse::{Parsed, parse_output};
use persona::PersonaSpace;
use prompt::{PromptKind, PromptTemplate, prompt_hash};
use rng::Rng;

/// Name of the novelty score in `Record::scores`.
pub const NOVELTY_SCORE: &str = "novelty";

/// What the labeller says a text expresses: dimension id → value id (a dimension may be absent
/// when undetermined).
pub type Detected = BTreeMap<String, String>;

/// The labeller hook: called on accepted inputs, in batches.
pub trait CellChecker: Send + Sync {
    /// Name for the summary and flags.
    fn name(&self) -> &str;
    /// One detection per text, in order.
    fn detect(&self, texts: &[&str]) -> Result<Vec<Detected>>;
}

/// Where the text comes from.
pub enum Backend<'a> {
    /// The model-free recombiner ([`template_gen`]).
    Template,
    /// A language model with a prompt template.
    Model {
        /// The model.
        llm: &'a dyn Llm,
        /// The prompt template (its kind says raw continuation or chat).
        template: PromptTemplate,
    },
}

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    /// Run seed.
    pub seed: u64,
    /// Attempt budget per planned input.
    pub attempts_per_input: u32,
    /// Sampling temperature.
    pub temperature: f32,
    /// Nucleus mass.
    pub top_p: f32,
    /// Token limit per attempt.
    pub max_tokens: u32,
    /// Example lines per prompt ([`prompt::PromptTemplate::render`]).
    pub fewshot: usize,
    /// Near-duplicate Jaccard threshold (word shingles).
    pub near_threshold: f64,
    /// Word shingle size.
    pub shingle: usize,
    /// Set aside inputs whose detected cell disagrees with the intended one.
    pub reject_disagreeing: bool,
    /// Attempts per batch (0: 4096 for the template backend, 64 for a model): the unit of
    /// model batching and of the resume log.
    pub batch: usize,
    /// Existing datasets whose kept records count as already known (near-duplicate and
    /// semantic checks, novelty).
    pub against: Vec<PathBuf>,
    /// Reject a candidate whose embedding cosine to a known text is at least this (needs an
    /// embedder).
    pub semantic_threshold: Option<f32>,
    /// Reject a candidate whose novelty (1 − cosine to the nearest known text) is below this
    /// (needs an embedder).
    pub min_novelty: Option<f64>,
    /// Work directory for the resume log ([`checkpoint::work_dir`]); `None`: no log.
    pub checkpoint: Option<PathBuf>,
    /// Output format.
    pub format: Format,
    /// Recorded as `parents` (e.g. the plan file).
    pub parents: Vec<String>,
    /// Free-form settings echoed into the manifest.
    pub config_echo: serde_json::Value,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            seed: 0,
            attempts_per_input: 4,
            temperature: 0.9,
            top_p: 0.95,
            max_tokens: 96,
            fewshot: 5,
            near_threshold: 0.7,
            shingle: 2,
            reject_disagreeing: false,
            batch: 0,
            against: Vec::new(),
            semantic_threshold: None,
            min_novelty: None,
            checkpoint: None,
            format: Format::Jsonl,
            parents: Vec::new(),
            config_echo: serde_json::Value::Null,
        }
    }
}

/// A cell that ended below its quota.
#[derive(Debug, Clone, Serialize)]
pub struct Shortfall {
    /// Cell key.
    pub cell: String,
    /// Planned.
    pub quota: u64,
    /// Accepted.
    pub accepted: u64,
    /// Attempts spent.
    pub attempts: u64,
    /// The most frequent rejection reason in this cell.
    pub main_reason: String,
}

/// Agreement of one dimension.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Agreement {
    /// Detected value equals the intended one.
    pub agree: u64,
    /// Inputs with a detection for this dimension.
    pub checked: u64,
    /// agree / checked.
    pub rate: f64,
}

/// Where the run's time went, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    /// Personas and prompt rendering (model backends).
    pub prepare: f64,
    /// The backend: model calls, or composing texts for the template backend.
    pub backend: f64,
    /// Parsing outputs and the MinHash checks.
    pub judge: f64,
    /// Embedding candidates and the semantic / novelty checks (and indexing `against`).
    pub embed: f64,
    /// The labeller check.
    pub check: f64,
    /// Writing records and the resume log.
    pub write: f64,
    /// The diversity figures at the end.
    pub diversity: f64,
    /// Everything.
    pub total: f64,
    /// backend / total.
    pub backend_share: f64,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct GenerateSummary {
    /// Output directory.
    pub out: PathBuf,
    /// `template` or the model id.
    pub backend: String,
    /// Template id (None for the template backend).
    pub template: Option<String>,
    /// Planned inputs.
    pub planned: u64,
    /// Accepted inputs.
    pub accepted: u64,
    /// Attempts made (including those replayed from the resume log).
    pub attempts: u64,
    /// Records written (accepted + rejected).
    pub records: u64,
    /// Accepted inputs replayed from the resume log of an interrupted run.
    pub resumed_accepted: u64,
    /// Attempts replayed from the resume log (not asked of the backend again).
    pub resumed_attempts: u64,
    /// A resume log from other settings was found and discarded.
    pub checkpoint_discarded: bool,
    /// Kept records of the `against` datasets checked against.
    pub against_records: u64,
    /// Rejections by flag kind.
    pub rejected: BTreeMap<String, u64>,
    /// Repairs the parser applied, by kind.
    pub parse_fixes: BTreeMap<String, u64>,
    /// Cells that fell short.
    pub short: Vec<Shortfall>,
    /// Per dimension, when a checker ran.
    pub agreement: Option<BTreeMap<String, Agreement>>,
    /// Checker name.
    pub checker: Option<String>,
    /// Novelty of accepted inputs, when an embedder was given.
    pub novelty: Option<NoveltySummary>,
    /// Diversity of accepted inputs.
    pub diversity: DiversityReport,
    /// Embedder used for the semantic checks, novelty and the diversity figures.
    pub embedder: Option<String>,
    /// Seconds in the backend (= `timings.backend`).
    pub seconds_backend: f64,
    /// Seconds overall (= `timings.total`).
    pub seconds_total: f64,
    /// Where the time went.
    pub timings: Timings,
}

/// An attempt's persona (provenance text), its prompt and hash (model backends), or its text
/// (template backend).
type Prepared = (String, Option<(String, String)>, Option<String>);

struct Attempt {
    cell_idx: usize,
    attempt: u32,
    seed: u64,
    persona: String,
    prompt: Option<(String, String)>,
}

struct CellState {
    cell: Cell,
    key: String,
    quota: u64,
    accepted: u64,
    attempts: u64,
    budget: u64,
    reasons: BTreeMap<String, u64>,
}

/// One judged attempt on its way to the dataset and the log.
struct Judged {
    record: Record,
    accepted: bool,
    cell_idx: usize,
    detected: Option<Detected>,
    fixes: Vec<String>,
}

/// Everything known so far (against datasets, then accepted inputs): ids and where they came
/// from, their MinHash signatures and (with an embedder) their embeddings, in one order.
struct Known {
    ids: Vec<String>,
    /// 0: this run; k: `against[k - 1]`.
    sources: Vec<u32>,
    source_names: Vec<String>,
    minhash: NearDupIndex,
    semantic: Option<SemanticIndex>,
}

impl Known {
    fn describe(&self, i: usize) -> String {
        let id = self.ids.get(i).map(String::as_str).unwrap_or("?");
        match self.sources.get(i).copied().unwrap_or(0) {
            0 => format!("accepted input {id}"),
            k => format!(
                "record {id} of {}",
                self.source_names
                    .get(k as usize)
                    .map(String::as_str)
                    .unwrap_or("?")
            ),
        }
    }

    fn insert(&mut self, text: &str, id: &str, source: u32, vector: Option<&[f32]>) {
        self.minhash.insert(text);
        if let (Some(s), Some(v)) = (self.semantic.as_mut(), vector) {
            s.push(v);
        }
        self.ids.push(id.to_string());
        self.sources.push(source);
    }
}

/// The run's identity for the resume log: everything that changes what it generates.
#[allow(clippy::too_many_arguments)]
fn fingerprint(
    taxonomy: &Taxonomy,
    states: &[CellState],
    personas: &PersonaSpace,
    model: &str,
    template: Option<&str>,
    checker: Option<&str>,
    embedder: Option<&str>,
    config: &GenerateConfig,
    batch: usize,
) -> Result<String> {
    let cells: Vec<(&str, u64)> = states.iter().map(|s| (s.key.as_str(), s.quota)).collect();
    let v = serde_json::json!({
        "v": 1,
        "taxonomy": taxonomy,
        "cells": cells,
        "personas": format!("{personas:?}"),
        "model": model, "template": template, "checker": checker, "embedder": embedder,
        "seed": config.seed, "attempts": config.attempts_per_input,
        "temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens,
        "near_threshold": config.near_threshold, "shingle": config.shingle,
        "reject_disagreeing": config.reject_disagreeing, "batch": batch,
        "against": config.against, "semantic_threshold": config.semantic_threshold,
        "min_novelty": config.min_novelty,
    });
    let bytes = serde_json::to_vec(&v)?;
    Ok(format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128_with_seed(&bytes, 0)
    ))
}

/// Runs generation for `cells` (cell, quota) and writes the dataset to `out`.
///
/// `progress(accepted, planned)` is called after each batch.
#[allow(clippy::too_many_arguments)]
pub fn generate(
    taxonomy: &Taxonomy,
    cells: &[(Cell, u64)],
    personas: &PersonaSpace,
    backend: &Backend<'_>,
    checker: Option<&dyn CellChecker>,
    embedder: Option<&dyn Embedder>,
    config: &GenerateConfig,
    out: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<GenerateSummary> {
    let started = Instant::now();
    if config.attempts_per_input == 0 {
        bail!("attempts per input must be at least 1");
    }
    if embedder.is_none() && (config.semantic_threshold.is_some() || config.min_novelty.is_some()) {
        bail!("the semantic-duplicate and novelty checks need an embedder");
    }
    let mut t = Timings::default();
    let mut states: Vec<CellState> = cells
        .iter()
        .filter(|(_, q)| *q > 0)
        .map(|(c, q)| CellState {
            cell: c.clone(),
            key: taxonomy.cell_key(c),
            quota: *q,
            accepted: 0,
            attempts: 0,
            budget: q.saturating_mul(config.attempts_per_input as u64),
            reasons: BTreeMap::new(),
        })
        .collect();
    let state_of: HashMap<String, usize> = states
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.clone(), i))
        .collect();
    let planned: u64 = states.iter().map(|s| s.quota).sum();
    let (model_name, template_id) = match backend {
        Backend::Template => ("template".to_string(), None),
        Backend::Model { llm, template } => (llm.model_id().to_string(), Some(template.id.clone())),
    };
    // The template backend's tagged sentences (cheap: a few hundred example sentences).
    let bank = template_gen::Bank::new(taxonomy);
    let batch = match (config.batch, backend) {
        (0, Backend::Template) => 4096,
        (0, Backend::Model { .. }) => 64,
        (n, _) => n,
    };
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )?;

    // What is already known: the `against` datasets.
    let t_known = Instant::now();
    let mut known = Known {
        ids: Vec::new(),
        sources: Vec::new(),
        source_names: std::iter::once("this run".to_string())
            .chain(config.against.iter().map(|p| p.display().to_string()))
            .collect(),
        minhash: NearDupIndex::new(config.shingle, 128, config.near_threshold, config.seed),
        semantic: embedder.map(|e| SemanticIndex::new(e.dim())),
    };
    let mut against_records = 0u64;
    for (k, path) in config.against.iter().enumerate() {
        let ds = Dataset::open(path).with_context(|| {
            format!(
                "--against {}: expected a dataset directory (from ingest, generate or any stage)",
                path.display()
            )
        })?;
        let mut chunk: Vec<Record> = Vec::new();
        let mut records = ds.records();
        loop {
            let next = records.next();
            let done = next.is_none();
            if let Some(r) = next {
                let r = r.with_context(|| format!("reading --against {}", path.display()))?;
                if r.is_kept() && !r.text.trim().is_empty() {
                    chunk.push(r);
                }
            }
            if chunk.len() >= 1024 || (done && !chunk.is_empty()) {
                let vectors = match embedder {
                    Some(e) => {
                        let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
                        Some(e.embed(&texts)?)
                    }
                    None => None,
                };
                for (i, r) in chunk.iter().enumerate() {
                    let v = vectors.as_ref().map(|v| v[i].as_slice());
                    known.insert(&r.text, &r.id, k as u32 + 1, v);
                }
                against_records += chunk.len() as u64;
                chunk.clear();
            }
            if done {
                break;
            }
        }
    }
    t.embed += t_known.elapsed().as_secs_f64();

    let mut accepted_items: Vec<(String, String)> = Vec::new();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut fixes: BTreeMap<String, u64> = BTreeMap::new();
    let mut agreement: BTreeMap<String, Agreement> = BTreeMap::new();
    let mut novelties: Vec<f64> = Vec::new();
    let mut novelty_first = 0u64;
    let mut attempts_total = 0u64;
    let mut records = 0u64;
    let params = serde_json::json!({
        "temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens,
    })
    .to_string();

    // Tallies one judged attempt (new or replayed) into the summary and writes it.
    let mut tally = |j: &Judged,
                     states: &mut [CellState],
                     writer: &mut DatasetWriter,
                     accepted_items: &mut Vec<(String, String)>|
     -> Result<()> {
        if let Some(d) = &j.detected {
            for (dim, want) in &j.record.intended {
                if let Some(got) = d.get(dim) {
                    let a = agreement.entry(dim.clone()).or_default();
                    a.checked += 1;
                    if got == want {
                        a.agree += 1;
                    }
                }
            }
        }
        for k in &j.fixes {
            *fixes.entry(k.clone()).or_default() += 1;
        }
        if j.accepted {
            accepted_items.push((states[j.cell_idx].key.clone(), j.record.text.clone()));
            if let Some(s) = j.record.scores.iter().find(|s| s.name == NOVELTY_SCORE) {
                novelties.push(s.value);
                if s.reason.starts_with("nothing known") {
                    novelty_first += 1;
                }
            }
        } else {
            for f in &j.record.flags {
                *rejected.entry(f.kind.clone()).or_default() += 1;
            }
        }
        writer.push(&j.record)?;
        records += 1;
        Ok(())
    };

    // Resume: replay what an interrupted run with the same settings already decided.
    let mut log = None;
    let mut resumed_accepted = 0u64;
    let mut resumed_attempts = 0u64;
    let mut checkpoint_discarded = false;
    if let Some(dir) = &config.checkpoint {
        let fp = fingerprint(
            taxonomy,
            &states,
            personas,
            &model_name,
            template_id.as_deref(),
            checker.map(|c| c.name()),
            embedder.map(|e| e.name()),
            config,
            batch,
        )?;
        let opened = Checkpoint::open(dir, &fp)?;
        checkpoint_discarded = opened.discarded;
        // Inputs that passed the duplicate checks (accepted, or set aside later by the
        // labeller) became known when they were judged: they become known again, in order.
        let passed = |r: &Record| r.flags.iter().all(|f| f.kind == "off-cell");
        let vectors = match embedder {
            Some(e) => {
                let t0 = Instant::now();
                let texts: Vec<&str> = opened
                    .entries
                    .iter()
                    .filter(|e| passed(&e.r))
                    .map(|e| e.r.text.as_str())
                    .collect();
                let v = e.embed(&texts)?;
                t.embed += t0.elapsed().as_secs_f64();
                Some(v)
            }
            None => None,
        };
        let mut vi = 0;
        for e in opened.entries {
            let key = taxonomy
                .dimensions
                .iter()
                .map(|d| {
                    format!(
                        "{}={}",
                        d.id,
                        e.r.intended.get(&d.id).map(String::as_str).unwrap_or("")
                    )
                })
                .collect::<Vec<_>>()
                .join("|");
            let Some(&ci) = taxonomy
                .parse_cell_key(&key)
                .and_then(|c| state_of.get(&taxonomy.cell_key(&c)))
            else {
                bail!(
                    "the resume log in {} names cell {key}, which is not in this plan; \
                     delete that directory to start afresh",
                    dir.display()
                );
            };
            let s = &mut states[ci];
            s.attempts += 1;
            attempts_total += 1;
            resumed_attempts += 1;
            if passed(&e.r) {
                let v = vectors.as_ref().map(|v| v[vi].as_slice());
                vi += 1;
                known.insert(&e.r.text, &e.r.id, 0, v);
            }
            let accepted = e.r.is_kept();
            if accepted {
                s.accepted += 1;
                resumed_accepted += 1;
            } else {
                for f in &e.r.flags {
                    *s.reasons.entry(f.kind.clone()).or_default() += 1;
                }
            }
            let j = Judged {
                record: e.r,
                accepted,
                cell_idx: ci,
                detected: e.d,
                fixes: e.fx,
            };
            tally(&j, &mut states, &mut writer, &mut accepted_items)?;
        }
        log = Some(opened.log);
        progress(accepted_items.len() as u64, planned);
    }

    loop {
        // Plan this round's attempts.
        let mut round: Vec<Attempt> = Vec::new();
        for (ci, s) in states.iter().enumerate() {
            let need = s
                .quota
                .saturating_sub(s.accepted)
                .min(s.budget.saturating_sub(s.attempts));
            for k in 0..need {
                let attempt = (s.attempts + k) as u32;
                let seed = Rng::new(config.seed, &s.key, attempt as u64).next_u64();
                round.push(Attempt {
                    cell_idx: ci,
                    attempt,
                    seed,
                    persona: String::new(),
                    prompt: None,
                });
            }
        }
        if round.is_empty() {
            break;
        }
        for chunk in round.chunks_mut(batch) {
            // Personas, prompts (or texts for the template backend), in parallel: each attempt
            // has its own stream, so the result does not depend on scheduling.
            let t0 = Instant::now();
            let produced: Vec<Result<Prepared>> = chunk
                .par_iter()
                .map(|a| {
                    let s = &states[a.cell_idx];
                    let mut rng = Rng::new(a.seed, "attempt", 0);
                    let persona = personas.sample(&mut rng);
                    match backend {
                        Backend::Template => {
                            let text = template_gen::compose(&bank, &s.cell, &persona, &mut rng);
                            Ok((persona.provenance(), None, Some(text)))
                        }
                        Backend::Model { template, .. } => {
                            let prompt = template.render(
                                taxonomy,
                                &s.cell,
                                &persona,
                                config.fewshot,
                                &mut rng,
                            )?;
                            let hash = prompt_hash(&prompt);
                            Ok((persona.provenance(), Some((prompt, hash)), None))
                        }
                    }
                })
                .collect();
            let mut outputs: Vec<Result<(String, bool)>> = Vec::with_capacity(chunk.len());
            let mut to_model: Vec<(usize, CompletionRequest)> = Vec::new();
            for (i, p) in produced.into_iter().enumerate() {
                match p {
                    Ok((persona, prompt, text)) => {
                        chunk[i].persona = persona;
                        outputs.push(Ok((text.unwrap_or_default(), false)));
                        if let (Some((prompt, hash)), Backend::Model { template, .. }) =
                            (prompt, backend)
                        {
                            let mut req = match template.kind {
                                PromptKind::Continuation => {
                                    let mut r = CompletionRequest::raw(prompt.clone());
                                    // Stop at the next tagged line, not at the first newline: a
                                    // small model often starts its line with a newline.
                                    r.stop = vec!["\n[".to_string()];
                                    // The parser takes the first line of three words or more
                                    // (a short title line before it is skipped), so generation
                                    // ends there; and an empty line is a wasted attempt.
                                    r.stop_after_line = Some(parse::MESSAGE_MIN_WORDS);
                                    r.require_text = true;
                                    r
                                }
                                PromptKind::Instruction => CompletionRequest::chat(vec![
                                    aligndata_models::llm::ChatMessage::user(prompt.clone()),
                                ]),
                            };
                            req.temperature = config.temperature;
                            req.top_p = config.top_p;
                            req.max_tokens = config.max_tokens;
                            req.seed = chunk[i].seed;
                            to_model.push((i, req));
                            chunk[i].prompt = Some((prompt, hash));
                        }
                    }
                    Err(e) => outputs.push(Err(e)),
                }
            }
            match backend {
                Backend::Template => t.backend += t0.elapsed().as_secs_f64(),
                Backend::Model { .. } => t.prepare += t0.elapsed().as_secs_f64(),
            }
            if let Backend::Model { llm, .. } = backend
                && !to_model.is_empty()
            {
                let t0 = Instant::now();
                let reqs: Vec<CompletionRequest> =
                    to_model.iter().map(|(_, r)| r.clone()).collect();
                let results = llm.complete_batch(&reqs, &|_| {});
                for ((i, _), r) in to_model.iter().zip(results) {
                    outputs[*i] = r.map(|c| (c.text, c.finish_reason == FinishReason::Length));
                }
                t.backend += t0.elapsed().as_secs_f64();
            }

            // Parse every output.
            let t0 = Instant::now();
            let parsed: Vec<Result<(String, Parsed), String>> = outputs
                .into_iter()
                .map(|out| {
                    let (raw, truncated) = out.map_err(|e| format!("{e:#}"))?;
                    let p = match backend {
                        Backend::Template => Parsed::Text {
                            text: raw.clone(),
                            fixes: vec![],
                        },
                        Backend::Model { template, .. }
                            if template.kind == PromptKind::Continuation =>
                        {
                            let (line, more, titled) = parse::message_line(&raw);
                            let mut p = parse_output(line, truncated && !more);
                            if let Parsed::Text { fixes, .. } = &mut p {
                                if titled {
                                    fixes.push("title-skipped");
                                }
                                if more {
                                    fixes.push("extra-lines");
                                }
                            }
                            p
                        }
                        Backend::Model { .. } => parse_output(&raw, truncated),
                    };
                    Ok((raw, p))
                })
                .collect();
            t.judge += t0.elapsed().as_secs_f64();
            // Embeddings of the candidates, in one call.
            let vectors: Option<Vec<Vec<f32>>> = match embedder {
                Some(e) => {
                    let t0 = Instant::now();
                    let texts: Vec<&str> = parsed
                        .iter()
                        .map(|p| match p {
                            Ok((_, Parsed::Text { text, .. })) => text.as_str(),
                            _ => "",
                        })
                        .collect();
                    let v = e.embed(&texts)?;
                    t.embed += t0.elapsed().as_secs_f64();
                    Some(v)
                }
                None => None,
            };

            // Judge in a fixed order.
            let t0 = Instant::now();
            let mut t_embed = 0.0;
            let mut judged: Vec<Judged> = Vec::with_capacity(chunk.len());
            for (i, (a, p)) in chunk.iter().zip(parsed).enumerate() {
                let s = &mut states[a.cell_idx];
                s.attempts += 1;
                attempts_total += 1;
                let record = |text: &str| {
                    base_record(
                        text,
                        a,
                        &s.cell,
                        taxonomy,
                        &model_name,
                        template_id.as_deref(),
                        &params,
                        config.seed,
                    )
                };
                let mut j = Judged {
                    record: Record::new(SourceKind::Synthetic, String::new()),
                    accepted: false,
                    cell_idx: a.cell_idx,
                    detected: None,
                    fixes: Vec::new(),
                };
                let (raw, parsed) = match p {
                    Ok(x) => x,
                    Err(e) => {
                        let mut r = record(&e);
                        r.text = String::new();
                        r.flag("backend-error", e);
                        j.record = r;
                        *s.reasons.entry("backend-error".into()).or_default() += 1;
                        judged.push(j);
                        continue;
                    }
                };
                let (text, f) = match parsed {
                    Parsed::Reject { kind, reason } => {
                        let mut r = record(&raw);
                        r.flag(kind, reason);
                        j.record = r;
                        *s.reasons.entry(kind.into()).or_default() += 1;
                        judged.push(j);
                        continue;
                    }
                    Parsed::Text { text, fixes } => (text, fixes),
                };
                j.fixes = f.iter().map(|k| k.to_string()).collect();
                let mut r = record(&text);
                if s.accepted >= s.quota {
                    r.flag(
                        "over-quota",
                        "the cell's quota was already met in this round".into(),
                    );
                    j.record = r;
                    judged.push(j);
                    continue;
                }
                // Wording: MinHash against everything known.
                if let Some(m) = known.minhash.check(&text) {
                    let (k, why) = match m {
                        Match::Exact(k) => (k, "exact duplicate".to_string()),
                        Match::Near(k, jac) => {
                            (k, format!("near duplicate (MinHash Jaccard {jac:.2})"))
                        }
                    };
                    r.flag("near-duplicate", format!("{why} of {}", known.describe(k)));
                    if let Some(fl) = r.flags.last_mut() {
                        fl.other_id = known.ids.get(k).cloned();
                    }
                    *s.reasons.entry("near-duplicate".into()).or_default() += 1;
                    j.record = r;
                    judged.push(j);
                    continue;
                }
                // Meaning: the nearest known embedding.
                let vector = vectors.as_ref().map(|v| v[i].as_slice());
                if let (Some(v), Some(sem)) = (vector, known.semantic.as_ref()) {
                    let te = Instant::now();
                    let nn = sem.nearest(v);
                    t_embed += te.elapsed().as_secs_f64();
                    let (novelty, reason, other) = match &nn {
                        Some(n) => (
                            (1.0 - n.cosine as f64).clamp(0.0, 2.0),
                            format!(
                                "1 − cosine {:.3} to the nearest known text, {}",
                                n.cosine,
                                known.describe(n.index)
                            ),
                            known.ids.get(n.index).cloned(),
                        ),
                        None => (1.0, "nothing known to compare with".to_string(), None),
                    };
                    r.scores.push(Score {
                        name: NOVELTY_SCORE.into(),
                        value: novelty,
                        reason,
                    });
                    let cosine = nn.as_ref().map(|n| n.cosine).unwrap_or(-1.0);
                    let flag =
                        if let Some(th) = config.semantic_threshold.filter(|th| cosine >= *th) {
                            Some((
                                "semantic-duplicate",
                                format!("embedding cosine {cosine:.3} ≥ {th:.3} with"),
                            ))
                        } else {
                            config.min_novelty.filter(|m| novelty < *m).map(|m| {
                                (
                                    "low-novelty",
                                    format!("novelty {novelty:.3} < {m:.3}: too close to"),
                                )
                            })
                        };
                    if let (Some((kind, why)), Some(n)) = (flag, &nn) {
                        r.flag(kind, format!("{why} {}", known.describe(n.index)));
                        if let Some(fl) = r.flags.last_mut() {
                            fl.other_id = other;
                        }
                        *s.reasons.entry(kind.into()).or_default() += 1;
                        j.record = r;
                        judged.push(j);
                        continue;
                    }
                }
                known.insert(&text, &r.id, 0, vector);
                s.accepted += 1;
                j.record = r;
                j.accepted = true;
                judged.push(j);
            }
            t.judge += t0.elapsed().as_secs_f64() - t_embed;
            t.embed += t_embed;

            // The labeller hook.
            if let Some(checker) = checker {
                let t0 = Instant::now();
                let idx: Vec<usize> = (0..judged.len()).filter(|&i| judged[i].accepted).collect();
                let texts: Vec<&str> = idx
                    .iter()
                    .map(|&i| judged[i].record.text.as_str())
                    .collect();
                let detected = checker.detect(&texts)?;
                for (&i, d) in idx.iter().zip(detected) {
                    let j = &mut judged[i];
                    let misses: Vec<String> = j
                        .record
                        .intended
                        .iter()
                        .filter_map(|(dim, want)| {
                            d.get(dim)
                                .filter(|got| *got != want)
                                .map(|got| format!("{dim}: intended {want}, detected {got}"))
                        })
                        .collect();
                    if config.reject_disagreeing && !misses.is_empty() {
                        j.record.flag(
                            "off-cell",
                            format!("{} says {}", checker.name(), misses.join("; ")),
                        );
                        j.accepted = false;
                        let s = &mut states[j.cell_idx];
                        s.accepted = s.accepted.saturating_sub(1);
                        *s.reasons.entry("off-cell".into()).or_default() += 1;
                    }
                    j.detected = Some(d);
                }
                t.check += t0.elapsed().as_secs_f64();
            }
            let t0 = Instant::now();
            for j in &judged {
                tally(j, &mut states, &mut writer, &mut accepted_items)?;
            }
            if let Some(log) = log.as_mut() {
                let entries: Vec<Entry> = judged
                    .into_iter()
                    .map(|j| Entry {
                        r: j.record,
                        d: j.detected,
                        fx: j.fixes,
                    })
                    .collect();
                log.append(&entries)?;
            }
            t.write += t0.elapsed().as_secs_f64();
            progress(accepted_items.len() as u64, planned);
        }
    }

    let t0 = Instant::now();
    let embeddings = match embedder {
        Some(e) if !accepted_items.is_empty() => {
            let texts: Vec<&str> = accepted_items.iter().map(|(_, t)| t.as_str()).collect();
            Some(e.embed(&texts)?)
        }
        _ => None,
    };
    let diversity = diversity::report(&accepted_items, embeddings.as_deref(), config.seed);
    t.diversity = t0.elapsed().as_secs_f64();
    let short: Vec<Shortfall> = states
        .iter()
        .filter(|s| s.accepted < s.quota)
        .map(|s| Shortfall {
            cell: s.key.clone(),
            quota: s.quota,
            accepted: s.accepted,
            attempts: s.attempts,
            main_reason: s
                .reasons
                .iter()
                .max_by_key(|(_, n)| **n)
                .map(|(k, _)| k.clone())
                .unwrap_or_default(),
        })
        .collect();
    for a in agreement.values_mut() {
        a.rate = if a.checked == 0 {
            0.0
        } else {
            a.agree as f64 / a.checked as f64
        };
    }
    t.total = started.elapsed().as_secs_f64();
    t.backend_share = if t.total > 0.0 {
        t.backend / t.total
    } else {
        0.0
    };
    let summary = GenerateSummary {
        out: out.to_path_buf(),
        backend: model_name,
        template: template_id,
        planned,
        accepted: accepted_items.len() as u64,
        attempts: attempts_total,
        records,
        resumed_accepted,
        resumed_attempts,
        checkpoint_discarded,
        against_records,
        rejected,
        parse_fixes: fixes,
        short,
        agreement: checker.map(|_| agreement),
        checker: checker.map(|c| c.name().to_string()),
        novelty: NoveltySummary::of(&novelties, novelty_first),
        diversity,
        embedder: embedder.map(|e| e.name().to_string()),
        seconds_backend: t.backend,
        seconds_total: t.total,
        timings: t,
    };
    writer.finish(ManifestFields {
        stage: "generate".into(),
        config: config.config_echo.clone(),
        parents: config.parents.clone(),
        extra: serde_json::to_value(&summary)?,
    })?;
    // The dataset is in place: the log has served its purpose.
    drop(log);
    if let Some(dir) = &config.checkpoint {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn base_record(
    text: &str,
    a: &Attempt,
    cell: &Cell,
    taxonomy: &Taxonomy,
    model: &str,
    template: Option<&str>,
    params: &str,
    seed: u64,
) -> Record {
    let mut r = Record::new(SourceKind::Synthetic, text.to_string());
    for (d, dim) in taxonomy.dimensions.iter().enumerate() {
        if let Some(v) = taxonomy.cell_value(cell, d) {
            r.intended.insert(dim.id.clone(), v.id.clone());
        }
    }
    let p = &mut r.provenance;
    p.persona = Some(a.persona.clone());
    p.template = Some(template.unwrap_or("template-backend").to_string());
    p.prompt_hash = a.prompt.as_ref().map(|(_, h)| h.clone());
    p.model = Some(model.to_string());
    p.params = (model != "template").then(|| params.to_string());
    p.seed = Some(seed);
    p.attempt = Some(a.attempt);
    r
}

#[cfg(test)]
mod tests;
