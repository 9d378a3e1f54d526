//! Feedback into training data: what users of the live agent said, as the files trainers read.
//!
//! Input: turns recorded by `aligndata serve` (user message, agent response, candidates) with
//! their feedback events, oldest first. Output, in one directory replaced atomically:
//!
//! | file | rows | fields (TRL, conversational) |
//! |---|---|---|
//! | `unpaired.{jsonl,parquet}` | one per turn with a thumb or rating: the latest one wins (a user who changed their mind) | `prompt`, `completion`, `label` |
//! | `preference.{jsonl,parquet}` | one per pairwise choice (chosen vs rejected candidate) and per correction (the correction chosen, the agent's response rejected) | `prompt`, `chosen`, `rejected` |
//! | `sft.{jsonl,parquet}` | one per correction: the user's message and the correction | `messages` |
//! | `provenance.jsonl` | per row: file, row, turn, feedback event, cell | |
//! | `quarantine.jsonl` | feedback events that make no row, with the reason | |
//! | `dataset/` | an aligndata dataset, one record per turn (source `feedback`), for `aligndata dedup`, `export`, `report` | |
//! | `summary.json` | the counts below | |
//!
//! Thumb up and rating ≥ 4 are desirable, thumb down and rating ≤ 3 undesirable: the same rule
//! the service's bandit uses for its reward. Comments make no rows (they are not an answer).
//!
//! Every text (message, response, candidates, corrections) goes through the same PII scrubber
//! as ingest ([`crate::pii`]), whether or not the service scrubbed it on the way in (it does
//! not scrub agent responses, and `serve --keep-pii` scrubs nothing). Then rows of each file are
//! deduplicated with the dedup stage's exact (normal form) and near (MinHash) matchers over
//! the row's whole text, scrubbed: the first row of each cluster stays, the rest are counted.
//!
//! Rows are held in memory until written (like `export`): a feedback log of a few million
//! events fits; the caller pages turns in from the database.

use std::collections::{BTreeMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use aligndata_core::{Flag, Label, Record, Response, SourceKind};
use aligndata_dataset::{DatasetWriter, Format, ManifestFields, QuarantineEntry, WriterOptions};

use crate::dedup::{DedupConfig, Method, dedup_texts};
use crate::export::formats::{Message, MessagesRow, PreferenceRow, UnpairedRow, write_both};
use crate::export::{JUDGE_CHOSEN, JUDGE_REJECTED, swap_into_place, temp_sibling};
use crate::pii::{self, PiiCounts};

/// One feedback event on a turn, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedbackEvent {
    /// Thumb up (true) or down.
    Thumb(bool),
    /// Rating 1–5.
    Rating(u8),
    /// A free-text comment.
    Comment(String),
    /// What the agent should have said.
    Correction(String),
    /// The user preferred candidate `chosen` over candidate `rejected`.
    Pairwise { chosen: usize, rejected: usize },
}

impl FeedbackEvent {
    /// `thumb`, `rating`, `comment`, `correction` or `pairwise`.
    pub fn kind(&self) -> &'static str {
        match self {
            FeedbackEvent::Thumb(_) => "thumb",
            FeedbackEvent::Rating(_) => "rating",
            FeedbackEvent::Comment(_) => "comment",
            FeedbackEvent::Correction(_) => "correction",
            FeedbackEvent::Pairwise { .. } => "pairwise",
        }
    }
}

/// A recorded turn with its feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedbackTurn {
    pub turn_id: i64,
    pub conversation_id: String,
    pub user_message: String,
    pub agent_response: String,
    /// The cell key the service stored (`dim=value|...` with a taxonomy labeller).
    pub cell: String,
    /// The policy arm that shaped the response, if a decision was used.
    pub arm: Option<String>,
    pub policy_version: Option<String>,
    pub candidates: Vec<String>,
    /// (event id, event), oldest first.
    pub events: Vec<(i64, FeedbackEvent)>,
}

/// How to export.
#[derive(Debug, Clone, Serialize)]
pub struct FeedbackExportConfig {
    /// A system message put first in every prompt.
    pub system_prompt: Option<String>,
    /// Replace personal data by typed placeholders (on by default; off only for data that
    /// never leaves a trusted place).
    pub scrub_pii: bool,
    /// Duplicate matchers run over each file's rows (semantic is not used here).
    pub dedup: DedupConfig,
    /// Also write `dataset/`.
    pub dataset: bool,
}

impl Default for FeedbackExportConfig {
    fn default() -> Self {
        FeedbackExportConfig {
            system_prompt: None,
            scrub_pii: true,
            dedup: DedupConfig::default(),
            dataset: true,
        }
    }
}

/// Counts of one output file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FileCounts {
    /// Rows built from feedback.
    pub candidates: u64,
    /// Rows dropped as exact duplicates of an earlier row.
    pub exact_duplicates: u64,
    /// Rows dropped as near duplicates (MinHash Jaccard ≥ the threshold).
    pub near_duplicates: u64,
    /// Rows written.
    pub written: u64,
}

/// What an export did (`summary.json`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct FeedbackExportSummary {
    /// Turns with feedback read.
    pub turns: u64,
    /// Feedback events read, by kind.
    pub events: BTreeMap<String, u64>,
    pub unpaired: FileCounts,
    /// Of the unpaired rows written: label true / false.
    pub unpaired_desirable: u64,
    pub unpaired_undesirable: u64,
    pub preference: FileCounts,
    /// Of the preference rows written: from pairwise choices / from corrections.
    pub preference_from_pairwise: u64,
    pub preference_from_corrections: u64,
    pub sft: FileCounts,
    /// Personal data replaced, by type, over every text exported.
    pub pii: PiiCounts,
    /// Texts in which something was replaced.
    pub texts_with_pii: u64,
    /// Events that made no row (comments, superseded thumbs, bad indexes), by reason.
    pub unused_events: BTreeMap<String, u64>,
    /// Records in `dataset/` (one per distinct user message).
    pub dataset_records: u64,
    /// Files written, relative to the output directory.
    pub files: Vec<String>,
}

/// Where a row came from.
#[derive(Debug, Clone, Serialize)]
struct Provenance {
    file: &'static str,
    row: u64,
    turn_id: i64,
    feedback_id: i64,
    cell: String,
    conversation_id: String,
}

struct Pending<T> {
    row: T,
    /// The row's whole text, for dedup.
    key: String,
    source: Provenance,
    /// Preference rows: true when from a pairwise choice; unpaired rows: the label.
    tag: bool,
}

/// Builds the rows turn by turn ([`FeedbackExporter::add`]) and writes them
/// ([`FeedbackExporter::finish`]).
pub struct FeedbackExporter {
    config: FeedbackExportConfig,
    summary: FeedbackExportSummary,
    unpaired: Vec<Pending<UnpairedRow>>,
    preference: Vec<Pending<PreferenceRow>>,
    sft: Vec<Pending<MessagesRow>>,
    quarantine: Vec<QuarantineEntry>,
    records: Vec<Record>,
    record_ids: HashSet<String>,
}

impl FeedbackExporter {
    pub fn new(config: FeedbackExportConfig) -> Result<FeedbackExporter> {
        config.dedup.validate()?;
        Ok(FeedbackExporter {
            config,
            summary: FeedbackExportSummary::default(),
            unpaired: Vec::new(),
            preference: Vec::new(),
            sft: Vec::new(),
            quarantine: Vec::new(),
            records: Vec::new(),
            record_ids: HashSet::new(),
        })
    }

    /// Turns read so far.
    pub fn turns(&self) -> u64 {
        self.summary.turns
    }

    fn scrub(&mut self, text: &str) -> String {
        if !self.config.scrub_pii {
            return text.to_string();
        }
        let (out, counts) = pii::scrub(text);
        if counts.total() > 0 {
            self.summary.texts_with_pii += 1;
            self.summary.pii.merge(&counts);
        }
        out
    }

    fn unused(&mut self, turn: &FeedbackTurn, event_id: i64, reason: &str) {
        *self
            .summary
            .unused_events
            .entry(reason.to_string())
            .or_default() += 1;
        self.quarantine.push(QuarantineEntry {
            file: "feedback".into(),
            line: event_id.max(0) as u64,
            reason: format!("feedback {event_id} on turn {}: {reason}", turn.turn_id),
            raw: String::new(),
        });
    }

    /// Adds one turn's rows.
    pub fn add(&mut self, turn: &FeedbackTurn) {
        self.summary.turns += 1;
        for (_, e) in &turn.events {
            *self.summary.events.entry(e.kind().to_string()).or_default() += 1;
        }
        let user = self.scrub(&turn.user_message);
        let response = self.scrub(&turn.agent_response);
        let candidates: Vec<String> = turn.candidates.iter().map(|c| self.scrub(c)).collect();
        let mut prompt = Vec::with_capacity(2);
        if let Some(system) = &self.config.system_prompt {
            prompt.push(Message::new("system", system));
        }
        prompt.push(Message::new("user", &user));
        let source = |file: &'static str, feedback_id: i64| Provenance {
            file,
            row: 0,
            turn_id: turn.turn_id,
            feedback_id,
            cell: turn.cell.clone(),
            conversation_id: turn.conversation_id.clone(),
        };

        // Unpaired: the latest thumb or rating is the turn's verdict.
        let verdicts: Vec<(i64, bool)> = turn
            .events
            .iter()
            .filter_map(|(id, e)| match e {
                FeedbackEvent::Thumb(up) => Some((*id, *up)),
                FeedbackEvent::Rating(r) => Some((*id, *r >= 4)),
                _ => None,
            })
            .collect();
        if let Some(&(id, label)) = verdicts.last() {
            for &(old, _) in &verdicts[..verdicts.len() - 1] {
                self.unused(
                    turn,
                    old,
                    "superseded by a later thumb or rating on the turn",
                );
            }
            if response.trim().is_empty() {
                self.unused(turn, id, "the agent response is empty");
            } else {
                self.unpaired.push(Pending {
                    key: format!("{user}\n{response}\n{label}"),
                    row: UnpairedRow {
                        prompt: prompt.clone(),
                        completion: vec![Message::new("assistant", &response)],
                        label,
                    },
                    source: source("unpaired", id),
                    tag: label,
                });
            }
        }

        let mut chosen_rejected: Option<(String, String)> = None;
        let mut corrections: Vec<String> = Vec::new();
        for (id, event) in &turn.events {
            match event {
                FeedbackEvent::Pairwise { chosen, rejected } => {
                    match (candidates.get(*chosen), candidates.get(*rejected)) {
                        (Some(c), Some(r)) if chosen != rejected => {
                            self.preference.push(Pending {
                                key: format!("{user}\n{c}\n{r}"),
                                row: PreferenceRow {
                                    prompt: prompt.clone(),
                                    chosen: vec![Message::new("assistant", c)],
                                    rejected: vec![Message::new("assistant", r)],
                                },
                                source: source("preference", *id),
                                tag: true,
                            });
                            chosen_rejected = Some((c.clone(), r.clone()));
                        }
                        _ => self.unused(
                            turn,
                            *id,
                            "pairwise indexes do not name two of the turn's candidates",
                        ),
                    }
                }
                FeedbackEvent::Correction(text) => {
                    let correction = self.scrub(text);
                    if correction.trim().is_empty() {
                        self.unused(turn, *id, "the correction is empty");
                        continue;
                    }
                    self.sft.push(Pending {
                        key: format!("{user}\n{correction}"),
                        row: MessagesRow {
                            messages: {
                                let mut m = prompt.clone();
                                m.push(Message::new("assistant", &correction));
                                m
                            },
                        },
                        source: source("sft", *id),
                        tag: false,
                    });
                    if correction.trim() == response.trim() || response.trim().is_empty() {
                        self.unused(
                            turn,
                            *id,
                            "no preference pair: the correction equals the response, or there is none",
                        );
                    } else {
                        self.preference.push(Pending {
                            key: format!("{user}\n{correction}\n{response}"),
                            row: PreferenceRow {
                                prompt: prompt.clone(),
                                chosen: vec![Message::new("assistant", &correction)],
                                rejected: vec![Message::new("assistant", &response)],
                            },
                            source: source("preference", *id),
                            tag: false,
                        });
                    }
                    corrections.push(correction);
                }
                FeedbackEvent::Comment(_) => {
                    self.unused(turn, *id, "comments make no training rows")
                }
                FeedbackEvent::Thumb(_) | FeedbackEvent::Rating(_) => {}
            }
        }

        if self.config.dataset {
            self.add_record(
                turn,
                user,
                response,
                candidates,
                verdicts.last().map(|v| v.1),
                corrections,
                chosen_rejected,
            );
        }
    }

    /// One dataset record per distinct user message: its responses are the agent's, then the
    /// corrections, then the candidates; the judge contract (`judge.chosen`/`judge.rejected`)
    /// names the latest correction over the agent's response, else the latest pairwise choice,
    /// so `aligndata export` makes the same pairs; a turn whose verdict is a thumb down (and
    /// has no correction) carries the flag `feedback-negative`, so no export trains on it.
    #[allow(clippy::too_many_arguments)]
    fn add_record(
        &mut self,
        turn: &FeedbackTurn,
        user: String,
        response: String,
        candidates: Vec<String>,
        verdict: Option<bool>,
        corrections: Vec<String>,
        chosen_rejected: Option<(String, String)>,
    ) {
        let mut record = Record::new(SourceKind::Feedback, user);
        if !self.record_ids.insert(record.id.clone()) {
            return;
        }
        record.provenance.conversation_id = Some(turn.conversation_id.clone());
        record.provenance.original_id = Some(format!("turn-{}", turn.turn_id));
        record.provenance.model = turn.policy_version.clone();
        for part in turn.cell.split('|') {
            if let Some((dimension, value)) = part.split_once('=') {
                record.labels.push(Label {
                    dimension: dimension.to_string(),
                    value: value.to_string(),
                    confidence: 1.0,
                    method: "serve".to_string(),
                });
            }
        }
        let mut push = |text: &str, strategy: &str, model: &str| -> usize {
            if let Some(i) = record.responses.iter().position(|r| r.text == text) {
                return i;
            }
            record.responses.push(Response {
                text: text.to_string(),
                model: model.to_string(),
                strategy: strategy.to_string(),
                scores: Vec::new(),
            });
            record.responses.len() - 1
        };
        let agent = (!response.trim().is_empty())
            .then(|| push(&response, turn.arm.as_deref().unwrap_or(""), "agent"));
        let mut pair = None;
        for c in &corrections {
            let i = push(c, "user-correction", "user");
            pair = agent.map(|a| (i, a));
        }
        for c in &candidates {
            push(c, "candidate", "agent");
        }
        if pair.is_none()
            && let Some((c, r)) = &chosen_rejected
        {
            pair = Some((push(c, "candidate", "agent"), push(r, "candidate", "agent")));
        }
        if let Some((chosen, rejected)) = pair {
            record.set_score(JUDGE_CHOSEN, chosen as f64, "user feedback".into());
            if rejected != chosen {
                record.set_score(JUDGE_REJECTED, rejected as f64, "user feedback".into());
            }
        } else if verdict == Some(false) {
            record.flags.push(Flag {
                kind: "feedback-negative".into(),
                reason: "the user gave the response a thumb down or a low rating".into(),
                other_id: None,
            });
        }
        if let Some(v) = verdict {
            record.set_score(
                "feedback.reward",
                f64::from(u8::from(v)),
                "latest thumb or rating".into(),
            );
        }
        self.records.push(record);
    }

    /// Deduplicates and writes everything to `out` (replaced atomically).
    pub fn finish(mut self, out: &Path) -> Result<FeedbackExportSummary> {
        let dedup = self.config.dedup.clone();
        let unpaired = dedup_rows(
            std::mem::take(&mut self.unpaired),
            &dedup,
            &mut self.summary.unpaired,
        )?;
        let preference = dedup_rows(
            std::mem::take(&mut self.preference),
            &dedup,
            &mut self.summary.preference,
        )?;
        let sft = dedup_rows(std::mem::take(&mut self.sft), &dedup, &mut self.summary.sft)?;
        self.summary.unpaired_desirable = unpaired.iter().filter(|p| p.tag).count() as u64;
        self.summary.unpaired_undesirable = unpaired.len() as u64 - self.summary.unpaired_desirable;
        self.summary.preference_from_pairwise = preference.iter().filter(|p| p.tag).count() as u64;
        self.summary.preference_from_corrections =
            preference.len() as u64 - self.summary.preference_from_pairwise;

        let tmp = temp_sibling(out, "partial")?;
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        let result = (|| -> Result<()> {
            let mut provenance = Vec::new();
            write_rows(&tmp, "unpaired", &unpaired, &mut provenance)?;
            write_rows(&tmp, "preference", &preference, &mut provenance)?;
            write_rows(&tmp, "sft", &sft, &mut provenance)?;
            for stem in ["unpaired", "preference", "sft"] {
                self.summary.files.push(format!("{stem}.jsonl"));
                self.summary.files.push(format!("{stem}.parquet"));
            }
            write_file(&tmp.join("provenance.jsonl"), &provenance)?;
            let mut q = Vec::new();
            for entry in &self.quarantine {
                serde_json::to_writer(&mut q, entry)?;
                q.push(b'\n');
            }
            write_file(&tmp.join("quarantine.jsonl"), &q)?;
            self.summary.files.push("provenance.jsonl".into());
            self.summary.files.push("quarantine.jsonl".into());
            if self.config.dataset {
                let mut writer = DatasetWriter::create(
                    &tmp.join("dataset"),
                    WriterOptions {
                        format: Format::Jsonl,
                        shard_records: 100_000,
                    },
                )?;
                for record in &self.records {
                    writer.push(record)?;
                }
                self.summary.dataset_records = self.records.len() as u64;
                writer.finish(ManifestFields {
                    stage: "feedback".into(),
                    config: serde_json::to_value(&self.config)?,
                    parents: Vec::new(),
                    extra: serde_json::json!({ "turns": self.summary.turns }),
                })?;
                self.summary.files.push("dataset/".into());
            }
            self.summary.files.push("summary.json".into());
            let mut bytes = serde_json::to_vec_pretty(&self.summary)?;
            bytes.push(b'\n');
            write_file(&tmp.join("summary.json"), &bytes)?;
            Ok(())
        })();
        if let Err(e) = result {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        swap_into_place(&tmp, out)?;
        Ok(self.summary)
    }
}

/// Drops exact and near duplicates (by each row's whole scrubbed text), keeping the first.
fn dedup_rows<T>(
    rows: Vec<Pending<T>>,
    config: &DedupConfig,
    counts: &mut FileCounts,
) -> Result<Vec<Pending<T>>> {
    counts.candidates = rows.len() as u64;
    let keys: Vec<&str> = rows.iter().map(|p| p.key.as_str()).collect();
    let decisions = dedup_texts(&keys, config, None)?;
    let mut drop = vec![false; rows.len()];
    for d in &decisions.duplicates {
        drop[d.record as usize] = true;
        match d.method {
            Method::Exact => counts.exact_duplicates += 1,
            _ => counts.near_duplicates += 1,
        }
    }
    let kept: Vec<Pending<T>> = rows
        .into_iter()
        .zip(drop)
        .filter(|(_, d)| !d)
        .map(|(p, _)| p)
        .collect();
    counts.written = kept.len() as u64;
    Ok(kept)
}

fn write_rows<T>(
    dir: &Path,
    stem: &'static str,
    rows: &[Pending<T>],
    provenance: &mut Vec<u8>,
) -> Result<()>
where
    T: Serialize + for<'de> serde::Deserialize<'de> + Clone,
{
    let plain: Vec<T> = rows.iter().map(|p| p.row.clone()).collect();
    write_both(dir, stem, &plain)?;
    for (i, p) in rows.iter().enumerate() {
        let mut source = p.source.clone();
        source.row = i as u64;
        serde_json::to_writer(&mut *provenance, &source)?;
        provenance.push(b'\n');
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut file =
        fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    file.write_all(bytes)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: i64, user: &str, response: &str, events: Vec<FeedbackEvent>) -> FeedbackTurn {
        FeedbackTurn {
            turn_id: id,
            conversation_id: format!("c{id}"),
            user_message: user.into(),
            agent_response: response.into(),
            cell: "theme=a|risk=none".into(),
            arm: Some("warm".into()),
            policy_version: None,
            candidates: vec!["first candidate".into(), "second candidate".into()],
            events: events
                .into_iter()
                .enumerate()
                .map(|(i, e)| (id * 10 + i as i64, e))
                .collect(),
        }
    }

    #[test]
    fn rows_per_kind_with_pii_scrubbed_and_duplicates_dropped() {
        let dir = tempfile::tempdir().expect("tmp");
        let out = dir.path().join("fb");
        let mut ex = FeedbackExporter::new(FeedbackExportConfig::default()).expect("exporter");
        ex.add(&turn(
            1,
            "I keep failing at work",
            "That sounds hard.",
            vec![FeedbackEvent::Thumb(false), FeedbackEvent::Thumb(true)],
        ));
        ex.add(&turn(
            2,
            "My exam went badly",
            "Try harder.",
            vec![
                FeedbackEvent::Correction(
                    "Mail me at jo@example.com and we talk it through.".into(),
                ),
                FeedbackEvent::Pairwise {
                    chosen: 1,
                    rejected: 0,
                },
                FeedbackEvent::Pairwise {
                    chosen: 5,
                    rejected: 0,
                },
                FeedbackEvent::Comment("meh".into()),
            ],
        ));
        // The same thumb on the same text from another turn: an exact duplicate.
        ex.add(&turn(
            3,
            "I keep failing at work",
            "That sounds hard.",
            vec![FeedbackEvent::Thumb(true)],
        ));
        let s = ex.finish(&out).expect("finish");
        assert_eq!(s.turns, 3);
        assert_eq!(
            (
                s.unpaired.candidates,
                s.unpaired.written,
                s.unpaired.exact_duplicates
            ),
            (2, 1, 1)
        );
        assert_eq!(
            (
                s.preference.written,
                s.preference_from_pairwise,
                s.preference_from_corrections
            ),
            (2, 1, 1)
        );
        assert_eq!(s.sft.written, 1);
        assert_eq!(s.pii.get(pii::PiiKind::Email), 1);
        assert_eq!(
            s.unused_events.values().sum::<u64>(),
            3,
            "{:?}",
            s.unused_events
        );
        let sft = fs::read_to_string(out.join("sft.jsonl")).expect("sft");
        assert!(
            sft.contains("[EMAIL]") && !sft.contains("jo@example.com"),
            "{sft}"
        );
        assert!(out.join("preference.parquet").is_file());
        assert_eq!(s.dataset_records, 2);
    }
}
