//! The record of DESIGN.md: one struct carries a datapoint through every stage.
//!
//! Every field here is an on-disk format (JSONL and Parquet), so every field is a compatibility
//! promise: add optional fields, never rename or remove.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Where a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    /// Written by a generator from a taxonomy cell.
    Synthetic,
    /// Ingested from real text.
    Real,
    /// Recorded by the online feedback service.
    Feedback,
}

impl SourceKind {
    /// The lowercase name used on disk and in summaries.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Synthetic => "synthetic",
            SourceKind::Real => "real",
            SourceKind::Feedback => "feedback",
        }
    }
}

/// How a record was made: enough to trace it back to its file and line, or to regenerate it.
///
/// Real records fill `file`, `line` and `original_id`; synthetic ones fill the generation fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Provenance {
    /// Input file the record was read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line (JSONL, CSV record start) or row (Parquet) in `file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The id the record had in its source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_id: Option<String>,
    /// Conversation id, for turns taken from chat exports or the feedback service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// 0-based turn index inside the conversation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub turn_index: Option<u32>,
    /// Synthetic: the persona the generator was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    /// Synthetic: the prompt template id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Synthetic: hash of the rendered prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_hash: Option<String>,
    /// Model that wrote the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling parameters as a JSON object (temperature, top_p, max_tokens, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub params: Option<String>,
    /// Sampling seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Which attempt at the cell's quota produced this record (0-based).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt: Option<u32>,
}

/// One value found for one taxonomy dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Label {
    /// Taxonomy dimension id.
    pub dimension: String,
    /// Value id inside the dimension.
    pub value: String,
    /// Confidence in [0, 1].
    pub confidence: f64,
    /// Method that produced the label (`prototype`, `trained`, `llm`, `intended`, …).
    pub method: String,
}

/// A named score with the reason it has this value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Score name (`quality`, `outlier`, `novelty`, `judge.validation`, …).
    pub name: String,
    /// The score.
    pub value: f64,
    /// Why, in words a reviewer can check.
    #[serde(default)]
    pub reason: String,
}

/// Why a record was set aside. Set aside means kept with a reason, never silently dropped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flag {
    /// Flag kind (`duplicate`, `outlier`, `pii`, `language`, `too_short`, `crisis`, …).
    pub kind: String,
    /// Human-readable reason.
    #[serde(default)]
    pub reason: String,
    /// The record this flag points at, e.g. the keeper for a duplicate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_id: Option<String>,
}

/// A candidate response to the record's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The response text.
    pub text: String,
    /// Model that wrote it.
    #[serde(default)]
    pub model: String,
    /// Response strategy or policy id.
    #[serde(default)]
    pub strategy: String,
    /// Judge scores for this response.
    #[serde(default)]
    pub scores: Vec<Score>,
}

/// One datapoint. Stages add fields; none removes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Stable content hash of source kind and text: the same text from the same kind of source
    /// has the same id on every machine.
    pub id: String,
    /// The user input.
    pub text: String,
    /// Synthetic, real or feedback.
    pub source: SourceKind,
    /// Where it came from.
    #[serde(default)]
    pub provenance: Provenance,
    /// Synthetic only: the cell the generator was asked for, dimension → value id.
    #[serde(default)]
    pub intended: BTreeMap<String, String>,
    /// Labels found, per dimension possibly several.
    #[serde(default)]
    pub labels: Vec<Label>,
    /// Named scores.
    #[serde(default)]
    pub scores: Vec<Score>,
    /// Why the record was set aside, if it was.
    #[serde(default)]
    pub flags: Vec<Flag>,
    /// Candidate responses.
    #[serde(default)]
    pub responses: Vec<Response>,
}

impl Record {
    /// A new record with its stable id computed from `source` and `text`.
    pub fn new(source: SourceKind, text: String) -> Record {
        Record {
            id: record_id(source, &text),
            text,
            source,
            provenance: Provenance::default(),
            intended: BTreeMap::new(),
            labels: Vec::new(),
            scores: Vec::new(),
            flags: Vec::new(),
            responses: Vec::new(),
        }
    }

    /// True when no flag sets the record aside.
    pub fn is_kept(&self) -> bool {
        self.flags.is_empty()
    }

    /// Adds a flag unless one of the same kind is already there.
    pub fn flag(&mut self, kind: &str, reason: String) {
        if self.flags.iter().any(|f| f.kind == kind) {
            return;
        }
        self.flags.push(Flag {
            kind: kind.to_string(),
            reason,
            other_id: None,
        });
    }

    /// Sets (or replaces) a named score.
    pub fn set_score(&mut self, name: &str, value: f64, reason: String) {
        match self.scores.iter_mut().find(|s| s.name == name) {
            Some(score) => {
                score.value = value;
                score.reason = reason;
            }
            None => self.scores.push(Score {
                name: name.to_string(),
                value,
                reason,
            }),
        }
    }

    /// The score with this name, if set.
    pub fn score(&self, name: &str) -> Option<f64> {
        self.scores.iter().find(|s| s.name == name).map(|s| s.value)
    }

    /// The best label for a dimension, if any.
    pub fn top_label(&self, dimension: &str) -> Option<&Label> {
        self.labels
            .iter()
            .filter(|l| l.dimension == dimension)
            .max_by(|a, b| a.confidence.total_cmp(&b.confidence))
    }
}

/// The stable id: xxh3-128 of the source kind and the text, as 32 hex digits.
///
/// xxh3 is not cryptographic; ids only need to be stable and collision-free in practice.
pub fn record_id(source: SourceKind, text: &str) -> String {
    let mut buf = Vec::with_capacity(text.len() + 12);
    buf.extend_from_slice(source.as_str().as_bytes());
    buf.push(0);
    buf.extend_from_slice(text.as_bytes());
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_depends_on_text_and_source_only() {
        let a = Record::new(SourceKind::Real, "I froze on stage".into());
        let b = Record::new(SourceKind::Real, "I froze on stage".into());
        let c = Record::new(SourceKind::Synthetic, "I froze on stage".into());
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.len(), 32);
    }

    #[test]
    fn json_omits_empty_provenance_fields_and_reads_back() {
        let mut r = Record::new(SourceKind::Real, "hello".into());
        r.provenance.file = Some("a.csv".into());
        let json = serde_json::to_string(&r).unwrap();
        assert!(!json.contains("persona"));
        let back: Record = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }
}
