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
//! budget (`quota × attempts_per_input`), for as many attempts as it still needs, as one batch
//! (the local model decodes them together; the OpenAI client keeps them in flight). Results are
//! judged in a fixed order (cell order, then attempt), so the output does not depend on which
//! completion finished first.

pub mod near;
pub mod parse;
pub mod persona;
pub mod prompt;
pub mod rng;
pub mod template_gen;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use rayon::prelude::*;
use serde::Serialize;

use aligndata_core::{Cell, Record, SourceKind, Taxonomy};
use aligndata_dataset::{DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::embed::Embedder;
use aligndata_models::llm::{CompletionRequest, FinishReason, Llm};

use crate::diversity::{self, DiversityReport};
use near::{Match, NearDupIndex};
use parse::{Parsed, parse_output};
use persona::PersonaSpace;
use prompt::{PromptKind, PromptTemplate, prompt_hash};
use rng::Rng;

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
    /// Near-duplicate Jaccard threshold (word shingles).
    pub near_threshold: f64,
    /// Word shingle size.
    pub shingle: usize,
    /// Set aside inputs whose detected cell disagrees with the intended one.
    pub reject_disagreeing: bool,
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
            near_threshold: 0.7,
            shingle: 2,
            reject_disagreeing: false,
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
    /// Attempts made.
    pub attempts: u64,
    /// Records written (accepted + rejected).
    pub records: u64,
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
    /// Diversity of accepted inputs.
    pub diversity: DiversityReport,
    /// Embedder used for the diversity figures.
    pub embedder: Option<String>,
    /// Seconds in the backend.
    pub seconds_backend: f64,
    /// Seconds overall.
    pub seconds_total: f64,
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

/// Runs generation for `cells` (cell, quota) and writes the dataset to `out`.
///
/// `progress(accepted, planned)` is called after each round.
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
    let planned: u64 = states.iter().map(|s| s.quota).sum();
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )?;
    let mut index = NearDupIndex::new(config.shingle, 128, config.near_threshold, config.seed);
    let mut accepted_ids: Vec<String> = Vec::new();
    let mut accepted_items: Vec<(String, String)> = Vec::new();
    let mut rejected: BTreeMap<String, u64> = BTreeMap::new();
    let mut fixes: BTreeMap<String, u64> = BTreeMap::new();
    let mut agreement: BTreeMap<String, Agreement> = BTreeMap::new();
    let mut backend_secs = 0.0;
    let mut attempts_total = 0u64;
    let mut records = 0u64;
    let params = serde_json::json!({
        "temperature": config.temperature, "top_p": config.top_p, "max_tokens": config.max_tokens,
    })
    .to_string();
    let (model_name, template_id) = match backend {
        Backend::Template => ("template".to_string(), None),
        Backend::Model { llm, template } => (llm.model_id().to_string(), Some(template.id.clone())),
    };

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
        // Personas, prompts (or texts for the template backend), in parallel: each attempt has
        // its own stream, so the result does not depend on scheduling.
        let t0 = Instant::now();
        let produced: Vec<Result<Prepared>> = round
            .par_iter()
            .map(|a| {
                let s = &states[a.cell_idx];
                let mut rng = Rng::new(a.seed, "attempt", 0);
                let persona = personas.sample(&mut rng);
                match backend {
                    Backend::Template => {
                        let text = template_gen::compose(taxonomy, &s.cell, &persona, &mut rng);
                        Ok((persona.provenance(), None, Some(text)))
                    }
                    Backend::Model { template, .. } => {
                        let prompt = template.render(taxonomy, &s.cell, &persona, &mut rng)?;
                        let hash = prompt_hash(&prompt);
                        Ok((persona.provenance(), Some((prompt, hash)), None))
                    }
                }
            })
            .collect();
        let mut outputs: Vec<Result<(String, bool)>> = Vec::with_capacity(round.len());
        let mut to_model: Vec<(usize, CompletionRequest)> = Vec::new();
        for (i, p) in produced.into_iter().enumerate() {
            match p {
                Ok((persona, prompt, text)) => {
                    round[i].persona = persona;
                    if let Some(t) = text {
                        outputs.push(Ok((t, false)));
                    } else {
                        outputs.push(Ok((String::new(), false)));
                    }
                    if let (Some((prompt, hash)), Backend::Model { template, .. }) =
                        (prompt, backend)
                    {
                        let mut req = match template.kind {
                            PromptKind::Continuation => {
                                let mut r = CompletionRequest::raw(prompt.clone());
                                // Stop at the next tagged line, not at the first newline: a
                                // small model often starts its line with a newline.
                                r.stop = vec!["\n[".to_string()];
                                r
                            }
                            PromptKind::Instruction => CompletionRequest::chat(vec![
                                aligndata_models::llm::ChatMessage::user(prompt.clone()),
                            ]),
                        };
                        req.temperature = config.temperature;
                        req.top_p = config.top_p;
                        req.max_tokens = config.max_tokens;
                        req.seed = round[i].seed;
                        to_model.push((i, req));
                        round[i].prompt = Some((prompt, hash));
                    }
                }
                Err(e) => outputs.push(Err(e)),
            }
        }
        if let Backend::Model { llm, .. } = backend
            && !to_model.is_empty()
        {
            let reqs: Vec<CompletionRequest> = to_model.iter().map(|(_, r)| r.clone()).collect();
            let results = llm.complete_batch(&reqs, &|_| {});
            for ((i, _), r) in to_model.iter().zip(results) {
                outputs[*i] = r.map(|c| (c.text, c.finish_reason == FinishReason::Length));
            }
        }
        backend_secs += t0.elapsed().as_secs_f64();

        // Judge in a fixed order.
        let mut batch_accepted: Vec<Record> = Vec::new();
        let mut batch_all: Vec<(Record, bool, usize)> = Vec::new();
        for (a, out) in round.iter().zip(outputs) {
            attempts_total += 1;
            let s = &mut states[a.cell_idx];
            s.attempts += 1;
            let (raw, truncated) = match out {
                Ok(x) => x,
                Err(e) => {
                    let mut r = base_record(
                        &format!("{e:#}"),
                        a,
                        s,
                        taxonomy,
                        &model_name,
                        template_id.as_deref(),
                        &params,
                        config.seed,
                    );
                    r.text = String::new();
                    r.flag("backend-error", format!("{e:#}"));
                    *s.reasons.entry("backend-error".into()).or_default() += 1;
                    batch_all.push((r, false, a.cell_idx));
                    continue;
                }
            };
            let parsed = match backend {
                Backend::Template => Parsed::Text {
                    text: raw.clone(),
                    fixes: vec![],
                },
                Backend::Model { template, .. } if template.kind == PromptKind::Continuation => {
                    let (line, more) = parse::first_line(&raw);
                    let mut p = parse_output(line, truncated && !more);
                    if more && let Parsed::Text { fixes, .. } = &mut p {
                        fixes.push("extra-lines");
                    }
                    p
                }
                Backend::Model { .. } => parse_output(&raw, truncated),
            };
            match parsed {
                Parsed::Reject { kind, reason } => {
                    let mut r = base_record(
                        &raw,
                        a,
                        s,
                        taxonomy,
                        &model_name,
                        template_id.as_deref(),
                        &params,
                        config.seed,
                    );
                    r.flag(kind, reason);
                    *s.reasons.entry(kind.into()).or_default() += 1;
                    batch_all.push((r, false, a.cell_idx));
                }
                Parsed::Text { text, fixes: f } => {
                    for k in f {
                        *fixes.entry(k.to_string()).or_default() += 1;
                    }
                    let mut r = base_record(
                        &text,
                        a,
                        s,
                        taxonomy,
                        &model_name,
                        template_id.as_deref(),
                        &params,
                        config.seed,
                    );
                    if s.accepted >= s.quota {
                        r.flag(
                            "over-quota",
                            "the cell's quota was already met in this round".into(),
                        );
                        batch_all.push((r, false, a.cell_idx));
                        continue;
                    }
                    match index.check(&text) {
                        Some(m) => {
                            let (i, why) = match m {
                                Match::Exact(i) => {
                                    (i, "exact duplicate of an accepted input".to_string())
                                }
                                Match::Near(i, j) => (
                                    i,
                                    format!(
                                        "near duplicate (MinHash Jaccard {j:.2}) of an accepted input"
                                    ),
                                ),
                            };
                            r.flag("near-duplicate", why);
                            if let Some(f) = r.flags.last_mut() {
                                f.other_id = accepted_ids.get(i).cloned();
                            }
                            *s.reasons.entry("near-duplicate".into()).or_default() += 1;
                            batch_all.push((r, false, a.cell_idx));
                        }
                        None => {
                            index.insert(&text);
                            accepted_ids.push(r.id.clone());
                            s.accepted += 1;
                            batch_accepted.push(r.clone());
                            batch_all.push((r, true, a.cell_idx));
                        }
                    }
                }
            }
        }
        // The labeller hook.
        if let Some(checker) = checker {
            let texts: Vec<&str> = batch_accepted.iter().map(|r| r.text.as_str()).collect();
            let detected = checker.detect(&texts)?;
            let mut by_id: BTreeMap<String, Detected> = BTreeMap::new();
            for (r, d) in batch_accepted.iter().zip(detected) {
                by_id.insert(r.id.clone(), d);
            }
            for (r, ok, ci) in batch_all.iter_mut() {
                if !*ok {
                    continue;
                }
                let Some(d) = by_id.get(&r.id) else { continue };
                let mut misses = Vec::new();
                for (dim, want) in &r.intended {
                    if let Some(got) = d.get(dim) {
                        let a = agreement.entry(dim.clone()).or_default();
                        a.checked += 1;
                        if got == want {
                            a.agree += 1;
                        } else {
                            misses.push(format!("{dim}: intended {want}, detected {got}"));
                        }
                    }
                }
                if config.reject_disagreeing && !misses.is_empty() {
                    r.flag(
                        "off-cell",
                        format!("{} says {}", checker.name(), misses.join("; ")),
                    );
                    *ok = false;
                    let s = &mut states[*ci];
                    s.accepted = s.accepted.saturating_sub(1);
                    *s.reasons.entry("off-cell".into()).or_default() += 1;
                }
            }
        }
        for (r, ok, ci) in batch_all {
            if ok {
                accepted_items.push((states[ci].key.clone(), r.text.clone()));
            } else {
                for f in &r.flags {
                    *rejected.entry(f.kind.clone()).or_default() += 1;
                }
            }
            writer.push(&r)?;
            records += 1;
        }
        progress(accepted_items.len() as u64, planned);
    }

    let embeddings = match embedder {
        Some(e) if !accepted_items.is_empty() => {
            let texts: Vec<&str> = accepted_items.iter().map(|(_, t)| t.as_str()).collect();
            Some(e.embed(&texts)?)
        }
        _ => None,
    };
    let diversity = diversity::report(&accepted_items, embeddings.as_deref(), config.seed);
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
    let summary = GenerateSummary {
        out: out.to_path_buf(),
        backend: model_name,
        template: template_id,
        planned,
        accepted: accepted_items.len() as u64,
        attempts: attempts_total,
        records,
        rejected,
        parse_fixes: fixes,
        short,
        agreement: checker.map(|_| agreement),
        checker: checker.map(|c| c.name().to_string()),
        diversity,
        embedder: embedder.map(|e| e.name().to_string()),
        seconds_backend: backend_secs,
        seconds_total: started.elapsed().as_secs_f64(),
    };
    writer.finish(ManifestFields {
        stage: "generate".into(),
        config: config.config_echo.clone(),
        parents: config.parents.clone(),
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
fn base_record(
    text: &str,
    a: &Attempt,
    s: &CellState,
    taxonomy: &Taxonomy,
    model: &str,
    template: Option<&str>,
    params: &str,
    seed: u64,
) -> Record {
    let mut r = Record::new(SourceKind::Synthetic, text.to_string());
    for (d, dim) in taxonomy.dimensions.iter().enumerate() {
        if let Some(v) = taxonomy.cell_value(&s.cell, d) {
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
