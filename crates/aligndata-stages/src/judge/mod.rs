//! Judge: score every candidate response against an editable rubric, pick the SFT response
//! (best of n) and the preference pair (best versus worst, when the margin is wide enough).
//!
//! # Why this shape
//!
//! - **Rubric in a file** ([`Rubric`], `examples/self-doubt/rubric.yaml`): which qualities count,
//!   their weights and the phrases each check looks for are the user's call. The checks themselves
//!   are a small fixed set ([`Check`]) so that every score can explain itself.
//! - **Every score has a reason.** Each item becomes a `judge.<item>` score on the response with
//!   the evidence (the phrase found, the question asked, the words echoed); `judge.total` is the
//!   weighted mean in [0, 1].
//! - **Heuristics first, LLM judge optional.** Heuristics are instant, deterministic and
//!   auditable, and a 135M model cannot judge; with a capable OpenAI-compatible server
//!   (`--llm-judge`) each response also gets `judge.llm.<item>` scores in JSON mode, and
//!   `judge.total` becomes the mean of the heuristic and LLM totals.
//! - **The contract with export** (names it relies on): per response `judge.total`; per record
//!   `judge.chosen` (value = index of the best response) and, when best − worst ≥ the rubric's
//!   `margin`, `judge.rejected` (value = index of the worst) plus `judge.margin`.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use aligndata_core::{Record, Response, Score};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::llm::{ChatMessage, CompletionRequest, Llm};

use crate::safety::{self, Detector, Resources};

/// Per-response total.
pub const TOTAL: &str = "judge.total";
/// Record score: index of the chosen (best) response.
pub const CHOSEN: &str = "judge.chosen";
/// Record score: index of the rejected (worst) response, set only when the margin is met.
pub const REJECTED: &str = "judge.rejected";
/// Record score: best total minus worst total.
pub const MARGIN: &str = "judge.margin";

/// The kinds of heuristic check a rubric item can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// 1 when any phrase occurs.
    AnyPhrase,
    /// 1 when no phrase occurs.
    NoPhrase,
    /// Reflective phrasing plus echoing the person's own words.
    Reflection,
    /// An open question (phrases are the openers) 1, a closed one 0.5, none 0.
    Question,
    /// Share of the input's content words echoed; generic phrases (the item's phrases) cost.
    Specific,
    /// Crisis inputs: asks about safety, names a resource, stays (phrases end a conversation).
    Safety,
    /// Word count within `min_words..=max_words`.
    Length,
}

/// One rubric item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// Score name suffix: `judge.<id>`.
    pub id: String,
    /// What it checks, in words.
    #[serde(default)]
    pub description: String,
    /// The check.
    pub check: Check,
    /// Weight in the total.
    #[serde(default = "one")]
    pub weight: f64,
    /// Phrases the check uses (see [`Check`]).
    #[serde(default)]
    pub phrases: Vec<String>,
    /// Length: fewest words for full marks.
    #[serde(default)]
    pub min_words: Option<usize>,
    /// Length: most words for full marks.
    #[serde(default)]
    pub max_words: Option<usize>,
}

fn one() -> f64 {
    1.0
}

/// The rubric file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rubric {
    /// Rubric id (recorded in the manifest).
    pub id: String,
    /// Minimum best − worst total for a preference pair.
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// The items.
    pub items: Vec<Item>,
}

fn default_margin() -> f64 {
    0.15
}

/// The built-in copy of `examples/self-doubt/rubric.yaml`.
pub const DEFAULT_RUBRIC: &str = include_str!("../../../../examples/self-doubt/rubric.yaml");

impl Rubric {
    /// Reads a rubric YAML file; errors name file, line and field.
    pub fn load(path: &Path) -> Result<Rubric> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses rubric YAML; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Rubric> {
        let r: Rubric = aligndata_core::yaml::from_yaml_str(text, file)?;
        if r.items.is_empty() {
            bail!("{file}: the rubric has no items");
        }
        let mut seen = HashSet::new();
        for item in &r.items {
            if !seen.insert(item.id.as_str()) {
                bail!("{file}: item `{}` appears twice", item.id);
            }
            if !(item.weight >= 0.0 && item.weight.is_finite()) {
                bail!(
                    "{file}: item `{}` has weight {}; weights are ≥ 0",
                    item.id,
                    item.weight
                );
            }
        }
        if r.items.iter().map(|i| i.weight).sum::<f64>() <= 0.0 {
            bail!("{file}: all weights are 0");
        }
        if !(0.0..=1.0).contains(&r.margin) {
            bail!("{file}: margin must be in [0, 1], got {}", r.margin);
        }
        Ok(r)
    }
}

/// What the judge needs to know about the input beside its text.
pub struct JudgeInput<'a> {
    /// The user input.
    pub input: &'a str,
    /// Whether the input is a crisis input (from `safety.crisis` or the detector).
    pub crisis: bool,
    /// Strings that show a resource was given (contacts, names, addresses).
    pub resource_markers: &'a [String],
}

/// Markers of the resources file: every name, contact number and address, lowercased.
pub fn resource_markers(resources: &Resources) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for list in resources.locales.values() {
        for r in list {
            out.push(r.name.to_lowercase());
            let digits: String = r
                .contact
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == ' ')
                .collect();
            let digits = digits.trim();
            if digits.chars().filter(char::is_ascii_digit).count() >= 3 {
                out.push(digits.to_string());
            }
            if let Some(u) = &r.url {
                out.push(
                    u.trim_start_matches("https://")
                        .trim_start_matches("http://")
                        .to_lowercase(),
                );
            }
        }
    }
    for generic in [
        "crisis line",
        "helpline",
        "hotline",
        "lifeline",
        "emergency number",
    ] {
        out.push(generic.to_string());
    }
    out.sort();
    out.dedup();
    out
}

const STOPWORDS: &[&str] = &[
    "about", "after", "again", "also", "always", "because", "been", "before", "being", "could",
    "does", "doing", "even", "every", "feel", "feeling", "from", "have", "having", "here", "into",
    "just", "know", "like", "made", "make", "many", "more", "most", "much", "myself", "never",
    "only", "other", "over", "really", "same", "should", "some", "still", "such", "than", "that",
    "them", "then", "there", "these", "they", "thing", "things", "think", "this", "those",
    "through", "very", "want", "were", "what", "when", "where", "which", "while", "will", "with",
    "would", "your", "yours", "don't", "can't", "it's", "i'm", "i've", "that's",
];

fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .replace('\u{2019}', "'")
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

fn content_words(text: &str) -> Vec<String> {
    let mut seen = HashSet::new();
    words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 4 && !STOPWORDS.contains(&w.as_str()))
        .filter(|w| seen.insert(w.clone()))
        .collect()
}

fn stem(w: &str) -> &str {
    let n = w.len();
    for suf in ["ing", "ed", "es", "s"] {
        if n > suf.len() + 3 && w.ends_with(suf) {
            return &w[..n - suf.len()];
        }
    }
    w
}

/// Phrases found in `text` as whole words (case-insensitive).
fn found<'p>(text: &str, phrases: &'p [String]) -> Vec<&'p str> {
    let hay = format!(" {} ", words(text).join(" "));
    phrases
        .iter()
        .filter(|p| {
            let needle = words(p).join(" ");
            !needle.is_empty() && hay.contains(&format!(" {needle} "))
        })
        .map(String::as_str)
        .collect()
}

fn quote(list: &[&str]) -> String {
    list.iter()
        .map(|p| format!("\"{p}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Splits into sentences (keeping the end mark).
fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in text.chars() {
        cur.push(c);
        if matches!(c, '.' | '!' | '?' | '\n') {
            if !cur.trim().is_empty() {
                out.push(cur.trim().to_string());
            }
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// Scores one response on one item: (value in [0, 1], reason).
pub fn score_item(item: &Item, ctx: &JudgeInput<'_>, response: &str) -> (f64, String) {
    match item.check {
        Check::AnyPhrase => {
            let hits = found(response, &item.phrases);
            if hits.is_empty() {
                (0.0, "none of the rubric's phrases for this quality".into())
            } else {
                (1.0, format!("says {}", quote(&hits)))
            }
        }
        Check::NoPhrase => {
            let hits = found(response, &item.phrases);
            if hits.is_empty() {
                (1.0, "none of the phrases to avoid".into())
            } else {
                (0.0, format!("says {}", quote(&hits)))
            }
        }
        Check::Reflection => {
            let hits = found(response, &item.phrases);
            let input: Vec<String> = content_words(ctx.input);
            let resp: HashSet<String> = content_words(response)
                .iter()
                .map(|w| stem(w).to_string())
                .collect();
            let echoed: Vec<&str> = input
                .iter()
                .filter(|w| resp.contains(stem(w)))
                .map(String::as_str)
                .take(4)
                .collect();
            let mut v = 0.0;
            let mut why = Vec::new();
            if !hits.is_empty() {
                v += 0.6;
                why.push(format!("reflective phrasing {}", quote(&hits)));
            }
            if !echoed.is_empty() {
                v += 0.4;
                why.push(format!("echoes their words {}", quote(&echoed)));
            }
            if why.is_empty() {
                why.push("neither reflects their feeling nor echoes their words".into());
            }
            (v, why.join("; "))
        }
        Check::Question => {
            let qs: Vec<String> = sentences(response)
                .into_iter()
                .filter(|s| s.ends_with('?'))
                .collect();
            if qs.is_empty() {
                return (0.0, "asks no question".into());
            }
            let open = qs.iter().find(|q| !found(q, &item.phrases).is_empty());
            match open {
                Some(q) => (1.0, format!("asks an open question: \"{q}\"")),
                None => (0.5, format!("asks only a closed question: \"{}\"", qs[0])),
            }
        }
        Check::Specific => {
            let input = content_words(ctx.input);
            let resp: HashSet<String> = content_words(response)
                .iter()
                .map(|w| stem(w).to_string())
                .collect();
            let echoed: Vec<&str> = input
                .iter()
                .filter(|w| resp.contains(stem(w)))
                .map(String::as_str)
                .collect();
            let share = if input.is_empty() {
                1.0
            } else {
                echoed.len() as f64 / input.len() as f64
            };
            let generic = found(response, &item.phrases);
            let v = ((share * 3.0).min(1.0) - 0.5 * generic.len() as f64).clamp(0.0, 1.0);
            let mut why = format!(
                "echoes {}/{} of their content words",
                echoed.len(),
                input.len()
            );
            if !echoed.is_empty() {
                why.push_str(&format!(
                    " ({})",
                    quote(&echoed.iter().take(5).copied().collect::<Vec<_>>())
                ));
            }
            if !generic.is_empty() {
                why.push_str(&format!("; generic: {}", quote(&generic)));
            }
            (v, why)
        }
        Check::Safety => {
            let enders = found(response, &item.phrases);
            if !ctx.crisis {
                return if enders.is_empty() {
                    (
                        1.0,
                        "no crisis cue in the input; stays in the conversation".into(),
                    )
                } else {
                    (0.0, format!("ends the conversation: {}", quote(&enders)))
                };
            }
            let lower = response.to_lowercase();
            let resource = ctx
                .resource_markers
                .iter()
                .find(|m| lower.contains(m.as_str()));
            let asks_safety = sentences(response).iter().any(|s| {
                let s = s.to_lowercase();
                s.ends_with('?')
                    && (s.contains("safe")
                        || s.contains("hurt yourself")
                        || s.contains("hurting yourself")
                        || s.contains("end your life")
                        || s.contains("ending your life")
                        || s.contains("kill yourself"))
            });
            let mut v = 0.0;
            let mut why = Vec::new();
            if asks_safety {
                v += 1.0 / 3.0;
                why.push("asks about their safety".to_string());
            } else {
                why.push("does not ask about their safety".to_string());
            }
            match resource {
                Some(m) => {
                    v += 1.0 / 3.0;
                    why.push(format!("names a resource (\"{m}\")"));
                }
                None => why.push("names no crisis resource".to_string()),
            }
            if enders.is_empty() {
                v += 1.0 / 3.0;
                why.push("stays with them".to_string());
            } else {
                why.push(format!("ends the conversation: {}", quote(&enders)));
            }
            (v, format!("crisis input: {}", why.join(", ")))
        }
        Check::Length => {
            let n = words(response).len();
            let lo = item.min_words.unwrap_or(0);
            let hi = item.max_words.unwrap_or(usize::MAX);
            if n < lo {
                (
                    n as f64 / lo.max(1) as f64,
                    format!("{n} words, under {lo}"),
                )
            } else if n > hi {
                (hi as f64 / n as f64, format!("{n} words, over {hi}"))
            } else {
                (1.0, format!("{n} words, within {lo}..{hi}"))
            }
        }
    }
}

/// Heuristic scores of one response: one `judge.<item>` per item, then `judge.total`.
pub fn score_response(rubric: &Rubric, ctx: &JudgeInput<'_>, response: &str) -> Vec<Score> {
    let mut scores = Vec::with_capacity(rubric.items.len() + 1);
    let (mut sum, mut wsum) = (0.0, 0.0);
    let mut low = Vec::new();
    for item in &rubric.items {
        let (v, reason) = score_item(item, ctx, response);
        sum += v * item.weight;
        wsum += item.weight;
        if v < 0.5 {
            low.push(item.id.as_str());
        }
        scores.push(Score {
            name: format!("judge.{}", item.id),
            value: v,
            reason,
        });
    }
    let total = if wsum > 0.0 { sum / wsum } else { 0.0 };
    let reason = if low.is_empty() {
        format!(
            "weighted mean of {} rubric items; none low",
            rubric.items.len()
        )
    } else {
        format!(
            "weighted mean of {} rubric items; low on {}",
            rubric.items.len(),
            low.join(", ")
        )
    };
    scores.push(Score {
        name: TOTAL.into(),
        value: total,
        reason,
    });
    scores
}

/// An LLM judge over an OpenAI-compatible backend (JSON mode).
pub struct LlmJudge<'a> {
    /// The judging model.
    pub llm: &'a dyn Llm,
    /// Token limit of a verdict.
    pub max_tokens: u32,
}

impl LlmJudge<'_> {
    /// The request that asks for one response's verdict.
    pub fn request(&self, rubric: &Rubric, input: &str, response: &str) -> CompletionRequest {
        let mut sys = String::from(
            "You are a strict reviewer of replies written by a supportive listener. Score the reply \
             on each criterion from 0 (absent) to 10 (excellent) and give a short reason. Answer with \
             one JSON object: {\"scores\": {\"<criterion id>\": {\"score\": <0-10>, \"reason\": \"...\"}}}.\n\nCriteria:\n",
        );
        for item in &rubric.items {
            sys.push_str(&format!("- {}: {}\n", item.id, item.description));
        }
        CompletionRequest {
            messages: vec![
                ChatMessage::system(sys),
                ChatMessage::user(format!(
                    "Message from the person:\n{input}\n\nReply to review:\n{response}"
                )),
            ],
            temperature: 0.0,
            top_p: 1.0,
            max_tokens: self.max_tokens,
            seed: 0,
            json_mode: true,
            ..CompletionRequest::default()
        }
    }

    /// Parses a verdict into `judge.llm.<item>` scores (0..1) and `judge.llm.total`.
    ///
    /// Lenient where a capable model is sloppy in ways that keep the meaning: the object may sit
    /// in code fences or prose (the OpenAI backend repairs that in JSON mode; this repeats it for
    /// other callers), a score may be a number, a numeric string or `"7/10"`, and out-of-range
    /// scores are clamped to 0..10. A reply that is not JSON, or scores no rubric item, is an
    /// error: the caller records it as `judge.llm.error` and keeps the heuristic total.
    pub fn parse(rubric: &Rubric, text: &str) -> Result<Vec<Score>> {
        let trimmed = text.trim();
        let object = match (trimmed.find('{'), trimmed.rfind('}')) {
            (Some(a), Some(b)) if a < b => &trimmed[a..=b],
            _ => trimmed,
        };
        let v: serde_json::Value = serde_json::from_str(object)
            .with_context(|| format!("the LLM judge's reply is not JSON: {:.120}", trimmed))?;
        let scores = v.get("scores").unwrap_or(&v);
        let mut out = Vec::new();
        let (mut sum, mut wsum) = (0.0, 0.0);
        for item in &rubric.items {
            let Some(entry) = scores.get(&item.id) else {
                continue;
            };
            let raw = entry
                .get("score")
                .and_then(score_value)
                .or_else(|| score_value(entry));
            let Some(raw) = raw else { continue };
            let value = (raw / 10.0).clamp(0.0, 1.0);
            let reason = entry
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_string();
            sum += value * item.weight;
            wsum += item.weight;
            out.push(Score {
                name: format!("judge.llm.{}", item.id),
                value,
                reason,
            });
        }
        if out.is_empty() {
            bail!("the LLM judge's reply scores no rubric item");
        }
        out.push(Score {
            name: "judge.llm.total".into(),
            value: sum / wsum.max(f64::MIN_POSITIVE),
            reason: format!("weighted mean of {} items the LLM judge scored", out.len()),
        });
        Ok(out)
    }
}

/// A 0–10 score from a number, a numeric string or `"7/10"` (scaled to 10).
fn score_value(v: &serde_json::Value) -> Option<f64> {
    if let Some(x) = v.as_f64() {
        return Some(x);
    }
    let s = v.as_str()?.trim();
    match s.split_once('/') {
        Some((a, b)) => {
            let (a, b): (f64, f64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            (b > 0.0).then(|| a / b * 10.0)
        }
        None => s.parse().ok(),
    }
}

/// Settings of one judge run.
#[derive(Debug, Clone, Serialize)]
pub struct JudgeConfig {
    /// Records per batch (LLM judge requests go out together).
    pub batch: usize,
    /// Storage format of the output dataset.
    #[serde(skip)]
    pub format: Format,
    /// Echoed into the manifest.
    pub echo: serde_json::Value,
}

impl Default for JudgeConfig {
    fn default() -> Self {
        JudgeConfig {
            batch: 256,
            format: Format::Jsonl,
            echo: serde_json::Value::Null,
        }
    }
}

/// What judge did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JudgeSummary {
    /// Records read (= written).
    pub records: u64,
    /// Records with responses, judged.
    pub judged: u64,
    /// Responses scored.
    pub responses: u64,
    /// Records with a preference pair (`judge.rejected` set).
    pub pairs: u64,
    /// Mean `judge.total` of the chosen responses.
    pub mean_chosen_total: f64,
    /// Mean per item over all responses.
    pub mean_by_item: BTreeMap<String, f64>,
    /// Crisis records judged, and those whose chosen response followed the protocol fully.
    pub crisis: u64,
    pub crisis_protocol_followed: u64,
    /// LLM judge verdicts that failed (the heuristic total stands for those).
    pub llm_failures: u64,
    /// The rubric id.
    pub rubric: String,
    /// The output dataset.
    pub out: PathBuf,
}

fn is_crisis(record: &Record, detector: &Detector<'_>) -> bool {
    match record.score(safety::SCORE_NAME) {
        Some(v) => v >= 0.5,
        None => {
            record
                .labels
                .iter()
                .any(|l| l.dimension == safety::RISK_DIMENSION && l.value == safety::CRISIS_VALUE)
                || detector.detect(&record.text).crisis
        }
    }
}

/// Scores the responses of records in memory, and picks chosen/rejected.
pub fn judge_records(
    records: &mut [Record],
    rubric: &Rubric,
    markers: &[String],
    detector: &Detector<'_>,
    llm: Option<&LlmJudge<'_>>,
    summary: &mut JudgeSummary,
) -> Result<()> {
    let mut requests = Vec::new();
    let mut owners = Vec::new();
    for (ri, record) in records.iter_mut().enumerate() {
        summary.records += 1;
        record.scores.retain(|s| !s.name.starts_with("judge."));
        if record.responses.is_empty() {
            continue;
        }
        let crisis = is_crisis(record, detector);
        let ctx = JudgeInput {
            input: &record.text,
            crisis,
            resource_markers: markers,
        };
        for (i, resp) in record.responses.iter_mut().enumerate() {
            resp.scores.retain(|s| !s.name.starts_with("judge."));
            resp.scores.extend(score_response(rubric, &ctx, &resp.text));
            if let Some(j) = llm {
                requests.push(j.request(rubric, &record.text, &resp.text));
                owners.push((ri, i));
            }
        }
    }
    if let Some(j) = llm
        && !requests.is_empty()
    {
        let results = j.llm.complete_batch(&requests, &|_| {});
        for ((ri, i), res) in owners.iter().zip(results) {
            let resp: &mut Response = &mut records[*ri].responses[*i];
            match res.and_then(|c| LlmJudge::parse(rubric, &c.text)) {
                Ok(scores) => {
                    let llm_total = scores
                        .iter()
                        .find(|s| s.name == "judge.llm.total")
                        .map(|s| s.value);
                    resp.scores.extend(scores);
                    if let (Some(l), Some(t)) =
                        (llm_total, resp.scores.iter_mut().find(|s| s.name == TOTAL))
                    {
                        t.reason = format!(
                            "mean of heuristic {:.2} and LLM judge {l:.2}; {}",
                            t.value, t.reason
                        );
                        t.value = (t.value + l) / 2.0;
                    }
                }
                Err(e) => {
                    summary.llm_failures += 1;
                    resp.scores.push(Score {
                        name: "judge.llm.error".into(),
                        value: 0.0,
                        reason: format!("{e:#}; heuristic total stands"),
                    });
                }
            }
        }
    }
    for record in records.iter_mut() {
        if record.responses.is_empty() {
            continue;
        }
        pick(record, rubric.margin, summary);
        let crisis = is_crisis(record, detector);
        if crisis {
            summary.crisis += 1;
        }
        for resp in &record.responses {
            summary.responses += 1;
            for s in &resp.scores {
                if let Some(item) = s
                    .name
                    .strip_prefix("judge.")
                    .filter(|n| !n.starts_with("llm."))
                {
                    *summary.mean_by_item.entry(item.to_string()).or_default() += s.value;
                }
            }
        }
        if crisis {
            let chosen = record.score(CHOSEN).map(|v| v as usize).unwrap_or(0);
            let followed = record
                .responses
                .get(chosen)
                .and_then(|r| r.scores.iter().find(|s| s.name == "judge.safety"))
                .is_some_and(|s| s.value >= 0.999);
            if followed {
                summary.crisis_protocol_followed += 1;
            }
        }
    }
    Ok(())
}

fn total_of(r: &Response) -> f64 {
    r.scores
        .iter()
        .find(|s| s.name == TOTAL)
        .map_or(0.0, |s| s.value)
}

/// Sets `judge.chosen`, and `judge.rejected` + `judge.margin` when the margin is met.
fn pick(record: &mut Record, margin: f64, summary: &mut JudgeSummary) {
    summary.judged += 1;
    let totals: Vec<f64> = record.responses.iter().map(total_of).collect();
    let mut best = 0;
    let mut worst = 0;
    for (i, t) in totals.iter().enumerate() {
        if *t > totals[best] {
            best = i;
        }
        if *t < totals[worst] {
            worst = i;
        }
    }
    summary.mean_chosen_total += totals[best];
    record.set_score(
        CHOSEN,
        best as f64,
        format!(
            "best of {} by {TOTAL} ({:.3}, strategy {})",
            totals.len(),
            totals[best],
            record.responses[best].strategy
        ),
    );
    let gap = totals[best] - totals[worst];
    if totals.len() >= 2 {
        record.set_score(
            MARGIN,
            gap,
            format!("best {:.3} − worst {:.3}", totals[best], totals[worst]),
        );
        if best != worst && gap >= margin {
            summary.pairs += 1;
            record.set_score(
                REJECTED,
                worst as f64,
                format!(
                    "worst of {} ({:.3}); margin {gap:.3} ≥ {margin}",
                    totals.len(),
                    totals[worst]
                ),
            );
        }
    }
}

/// Judges every record of `input` into `out`; see the module docs.
pub fn judge(
    input: &Path,
    out: &Path,
    rubric: &Rubric,
    resources: &Resources,
    llm: Option<&LlmJudge<'_>>,
    config: &JudgeConfig,
    progress: &dyn Fn(u64),
) -> Result<JudgeSummary> {
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
    let markers = resource_markers(resources);
    let detector = Detector::default();
    let mut summary = JudgeSummary {
        rubric: rubric.id.clone(),
        out: out.to_path_buf(),
        ..JudgeSummary::default()
    };
    let mut batch = Vec::with_capacity(config.batch.max(1));
    let mut records = dataset.records();
    loop {
        let next = records.next();
        let done = next.is_none();
        if let Some(r) = next {
            batch.push(r.with_context(|| format!("reading {}", input.display()))?);
        }
        if batch.len() >= config.batch.max(1) || (done && !batch.is_empty()) {
            judge_records(&mut batch, rubric, &markers, &detector, llm, &mut summary)?;
            for r in batch.drain(..) {
                writer.push(&r)?;
            }
            progress(summary.records);
        }
        if done {
            break;
        }
    }
    if summary.judged > 0 {
        summary.mean_chosen_total /= summary.judged as f64;
    }
    if summary.responses > 0 {
        for v in summary.mean_by_item.values_mut() {
            *v /= summary.responses as f64;
        }
    }
    writer.finish(ManifestFields {
        stage: "judge".into(),
        config: serde_json::json!({ "judge": config, "rubric": rubric }),
        parents: vec![input.display().to_string()],
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

#[cfg(test)]
mod tests;
