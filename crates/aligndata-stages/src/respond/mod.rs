//! Respond: candidate responses for every kept input, guided by an editable policy, with the
//! safety protocol in front.
//!
//! # Why this shape
//!
//! - **Policy in a file.** What a good response is belongs to the user, not the code: the system
//!   prompt, the rules, the sampling temperatures and the crisis variants live in `policy.yaml`
//!   ([`Policy`]); its `id` is stored as every response's `strategy`.
//! - **Several candidates, varied temperature.** The judge picks the best of n and pairs best with
//!   worst for preference data; that only works when candidates differ, so candidate `i` samples
//!   at `temperatures[i mod len]` with its own seed.
//! - **Crisis inputs never reach the small model.** Every record goes through the safety
//!   [`Detector`](crate::safety::Detector) first; a crisis input gets the label `risk=crisis`, the
//!   `safety.crisis` score with the cue, and the crisis template's variants (with locale resources)
//!   as its candidates, strategy `safety.crisis`. A 135M model cannot be trusted with that turn.
//! - **Resources for the person's locale.** The crisis resources are chosen per record
//!   ([`record_locale`]): the record's own `locale` (its intended cell's `locale` value, e.g. from
//!   a taxonomy with a `locale` dimension, else a `locale` label), else `--locale`, else the
//!   resources file's fallback. A person in Dublin gets Samaritans Ireland, not 988.
//! - **Batched and resumable.** Requests of many records go to `Llm::complete_batch` together (the
//!   local backend decodes them in one forward pass, the OpenAI backend keeps them in flight); the
//!   binary wraps the model in `CachedLlm`, so a rerun after a crash repeats no paid request (a
//!   request's seed is derived from the record id and candidate index, so it hashes the same).
//! - **Nothing dropped.** Records set aside by earlier stages pass through untouched (still
//!   checked for crisis cues, so a reviewer filtering on `risk=crisis` sees them all); a kept record
//!   whose every candidate failed gets the flag `no_response` with the error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use aligndata_core::{Record, Response};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::llm::{ChatMessage, CompletionRequest, Llm};

use crate::safety::{self, CrisisTemplate, Detector, Resources};

/// The strategy id of crisis-template responses.
pub const CRISIS_STRATEGY: &str = "safety.crisis";
/// The flag set on a kept record none of whose candidates could be written.
pub const NO_RESPONSE_FLAG: &str = "no_response";

/// The response policy file (see `examples/self-doubt/policy.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Recorded as each model response's strategy.
    pub id: String,
    /// The system prompt.
    pub system: String,
    /// Rules appended to the system prompt as a bulleted list.
    #[serde(default)]
    pub rules: Vec<String>,
    /// Candidate `i` samples at `temperatures[i mod len]`.
    #[serde(default = "default_temperatures")]
    pub temperatures: Vec<f32>,
    /// Nucleus sampling mass.
    #[serde(default = "default_top_p")]
    pub top_p: f32,
    /// Token limit per candidate.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// The crisis response variants.
    #[serde(default = "default_crisis")]
    pub crisis: CrisisTemplate,
}

fn default_temperatures() -> Vec<f32> {
    vec![0.5, 0.9]
}
fn default_top_p() -> f32 {
    0.95
}
fn default_max_tokens() -> u32 {
    160
}
fn default_crisis() -> CrisisTemplate {
    CrisisTemplate {
        variants: vec![safety::DEFAULT_CRISIS_VARIANT.to_string()],
    }
}

/// The built-in copy of `examples/self-doubt/policy.yaml`.
pub const DEFAULT_POLICY: &str = include_str!("../../../../examples/self-doubt/policy.yaml");

impl Policy {
    /// Reads a policy YAML file; errors name file, line and field.
    pub fn load(path: &Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses policy YAML; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Policy> {
        let p: Policy = aligndata_core::yaml::from_yaml_str(text, file)?;
        if p.temperatures.is_empty() || p.temperatures.iter().any(|t| !(0.0..=2.0).contains(t)) {
            bail!("{file}: temperatures must be a non-empty list of values in [0, 2]");
        }
        if !(p.top_p > 0.0 && p.top_p <= 1.0) {
            bail!("{file}: top_p must be in (0, 1], got {}", p.top_p);
        }
        if p.max_tokens == 0 {
            bail!("{file}: max_tokens must be at least 1");
        }
        if p.system.trim().is_empty() {
            bail!("{file}: system is empty");
        }
        Ok(p)
    }

    /// The sampling temperature of candidate `i` (0.7 when the list is empty).
    pub fn temperature(&self, i: usize) -> f32 {
        self.temperatures
            .get(i % self.temperatures.len().max(1))
            .copied()
            .unwrap_or(0.7)
    }

    /// The system message: prompt plus rules.
    pub fn system_message(&self) -> String {
        let mut s = self.system.trim().to_string();
        if !self.rules.is_empty() {
            s.push_str("\n\nRules:\n");
            for r in &self.rules {
                s.push_str("- ");
                s.push_str(r.trim());
                s.push('\n');
            }
        }
        s.trim_end().to_string()
    }

    /// The request for candidate `i` of `text`; `seed` makes it reproducible (and cacheable).
    pub fn request(&self, text: &str, i: usize, seed: u64) -> CompletionRequest {
        CompletionRequest {
            messages: vec![
                ChatMessage::system(self.system_message()),
                ChatMessage::user(text),
            ],
            temperature: self.temperature(i),
            top_p: self.top_p,
            max_tokens: self.max_tokens,
            seed,
            ..CompletionRequest::default()
        }
    }
}

/// Settings of one respond run.
#[derive(Debug, Clone, Serialize)]
pub struct RespondConfig {
    /// Candidates per input.
    pub n: usize,
    /// Run seed (mixed with record id and candidate index).
    pub seed: u64,
    /// Default locale of the crisis resources (`US`, `UK`, …) for records that carry none
    /// (see [`record_locale`]); `None`: the resources' fallback.
    pub locale: Option<String>,
    /// Records per model batch.
    pub batch: usize,
    /// Storage format of the output dataset.
    #[serde(skip)]
    pub format: Format,
    /// Echoed into the manifest (policy path, backend, model).
    pub echo: serde_json::Value,
}

impl Default for RespondConfig {
    fn default() -> Self {
        RespondConfig {
            n: 2,
            seed: 0,
            locale: None,
            batch: 64,
            format: Format::Jsonl,
            echo: serde_json::Value::Null,
        }
    }
}

/// What respond did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RespondSummary {
    /// Records read (= written).
    pub records: u64,
    /// Kept records that got candidates.
    pub responded: u64,
    /// Of them, crisis inputs answered with the crisis template.
    pub crisis: u64,
    /// Crisis cues seen in records set aside by earlier stages (labelled, not answered).
    pub crisis_set_aside: u64,
    /// Candidates written by the model.
    pub model_candidates: u64,
    /// Candidates that failed (backend error or empty text).
    pub failed_candidates: u64,
    /// Kept records flagged `no_response`.
    pub no_response: u64,
    /// Crisis detections by strongest cue kind.
    pub crisis_by_kind: BTreeMap<String, u64>,
    /// Crisis responses by the locale whose resources they name (`default` when neither the
    /// record nor the run named one and the fallback was used).
    pub crisis_by_locale: BTreeMap<String, u64>,
    /// The model, and the policy id.
    pub model: String,
    pub policy: String,
    /// The output dataset.
    pub out: PathBuf,
}

/// Progress: records handled so far.
pub type Progress<'a> = &'a dyn Fn(u64);

/// Cleans a model reply: trims, drops a leading speaker tag, drops empty lines at the ends.
pub fn clean_reply(text: &str) -> String {
    let mut t = text.trim();
    for tag in ["Assistant:", "assistant:", "Listener:", "Response:"] {
        if let Some(rest) = t.strip_prefix(tag) {
            t = rest.trim_start();
        }
    }
    t.to_string()
}

/// The dimension (in `intended` or `labels`) that carries a record's locale.
pub const LOCALE_DIMENSION: &str = "locale";

/// The locale a record carries: its intended cell's `locale`, else its most confident `locale`
/// label; `None` when it has neither (the run's default applies).
pub fn record_locale(record: &Record) -> Option<&str> {
    if let Some(l) = record.intended.get(LOCALE_DIMENSION) {
        return Some(l.as_str());
    }
    record
        .labels
        .iter()
        .filter(|l| l.dimension == LOCALE_DIMENSION)
        .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
        .map(|l| l.value.as_str())
}

fn seed_for(run: u64, id: &str, i: usize) -> u64 {
    xxhash_rust::xxh3::xxh3_64(format!("{run}\0{id}\0{i}").as_bytes())
}

/// Writes candidates for every kept record of `input` into `out`; see the module docs.
#[allow(clippy::too_many_arguments)]
pub fn respond(
    input: &Path,
    out: &Path,
    policy: &Policy,
    resources: &Resources,
    detector: &Detector<'_>,
    llm: &dyn Llm,
    config: &RespondConfig,
    progress: Progress<'_>,
) -> Result<RespondSummary> {
    if config.n == 0 {
        bail!("n must be at least 1");
    }
    let dataset = Dataset::open(input)
        .with_context(|| format!("could not open dataset {}", input.display()))?;
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )
    .with_context(|| format!("could not create dataset {}", out.display()))?;
    let mut summary = RespondSummary {
        model: llm.model_id().to_string(),
        policy: policy.id.clone(),
        out: out.to_path_buf(),
        ..RespondSummary::default()
    };
    let mut batch: Vec<Record> = Vec::with_capacity(config.batch.max(1));
    for record in dataset.records() {
        let record = record.with_context(|| format!("reading {}", input.display()))?;
        batch.push(record);
        if batch.len() >= config.batch.max(1) {
            respond_batch(
                &mut batch,
                policy,
                resources,
                detector,
                llm,
                config,
                &mut summary,
            )?;
            for r in batch.drain(..) {
                writer.push(&r)?;
            }
            progress(summary.records);
        }
    }
    respond_batch(
        &mut batch,
        policy,
        resources,
        detector,
        llm,
        config,
        &mut summary,
    )?;
    for r in batch.drain(..) {
        writer.push(&r)?;
    }
    progress(summary.records);
    writer.finish(ManifestFields {
        stage: "respond".into(),
        config: serde_json::json!({ "respond": config, "policy": policy }),
        parents: vec![input.display().to_string()],
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

/// Responds to records in memory: safety first, then one model batch for the rest.
pub fn respond_batch(
    records: &mut [Record],
    policy: &Policy,
    resources: &Resources,
    detector: &Detector<'_>,
    llm: &dyn Llm,
    config: &RespondConfig,
    summary: &mut RespondSummary,
) -> Result<()> {
    let texts: Vec<&str> = records.iter().map(|r| r.text.as_str()).collect();
    let detections = detector.detect_batch(&texts)?;
    let mut requests = Vec::new();
    let mut owners: Vec<(usize, usize)> = Vec::new();
    for (idx, (record, det)) in records.iter_mut().zip(&detections).enumerate() {
        summary.records += 1;
        safety::mark(record, det);
        if det.crisis {
            let kind = det
                .strongest()
                .map(|k| format!("{k:?}").to_lowercase())
                .unwrap_or_default();
            *summary.crisis_by_kind.entry(kind).or_default() += 1;
        }
        if !record.is_kept() {
            if det.crisis {
                summary.crisis_set_aside += 1;
            }
            continue;
        }
        summary.responded += 1;
        if det.crisis {
            summary.crisis += 1;
            let locale = record_locale(record)
                .map(str::to_string)
                .or_else(|| config.locale.clone());
            *summary
                .crisis_by_locale
                .entry(locale.clone().unwrap_or_else(|| "default".into()))
                .or_default() += 1;
            record.responses = (0..config.n)
                .map(|i| Response {
                    text: policy.crisis.render(i, resources, locale.as_deref()),
                    model: "template".into(),
                    strategy: CRISIS_STRATEGY.into(),
                    scores: Vec::new(),
                })
                .collect();
            continue;
        }
        record.responses.clear();
        for i in 0..config.n {
            requests.push(policy.request(&record.text, i, seed_for(config.seed, &record.id, i)));
            owners.push((idx, i));
        }
    }
    if requests.is_empty() {
        return Ok(());
    }
    let results = llm.complete_batch(&requests, &|_| {});
    let mut errors: BTreeMap<usize, String> = BTreeMap::new();
    for ((idx, i), result) in owners.iter().zip(results) {
        let record = &mut records[*idx];
        match result {
            Ok(c) => {
                let text = clean_reply(&c.text);
                if text.is_empty() {
                    summary.failed_candidates += 1;
                    errors
                        .entry(*idx)
                        .or_insert_with(|| "the model returned an empty reply".into());
                    continue;
                }
                summary.model_candidates += 1;
                let temp = policy.temperature(*i);
                record.responses.push(Response {
                    text,
                    model: llm.model_id().to_string(),
                    strategy: format!("{}@t{temp}", policy.id),
                    scores: Vec::new(),
                });
            }
            Err(e) => {
                summary.failed_candidates += 1;
                errors.entry(*idx).or_insert_with(|| format!("{e:#}"));
            }
        }
    }
    for (idx, err) in errors {
        let record = &mut records[idx];
        if record.responses.is_empty() {
            summary.no_response += 1;
            record.flag(
                NO_RESPONSE_FLAG,
                format!("no candidate could be written: {err}"),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
