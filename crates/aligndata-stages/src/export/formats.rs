//! The training-file formats: one row type per format, with exactly the field names the
//! libraries that read them document, so trainers load the files as they are.
//!
//! - OpenAI chat fine-tuning: `{"messages": [{"role", "content"}…]}`.
//! - TRL conversational language modelling: the same `messages` column.
//! - TRL prompt-completion (conversational): `prompt` (system + user messages), `completion`
//!   (the assistant message), so the trainer computes the loss on the completion only.
//! - ShareGPT (axolotl, LLaMA-Factory, FastChat): `conversations` of `{"from", "value"}` with
//!   `from` in `system` / `human` / `gpt`.
//! - TRL preference (DPO, ORPO, …, conversational form): `prompt`, `chosen`, `rejected`.
//! - OpenAI preference fine-tuning (DPO): `input` `{messages}`, `preferred_output` and
//!   `non_preferred_output`, each a list holding one assistant message.
//! - TRL unpaired preference (KTO, conversational): `prompt`, `completion`, `label` (bool).
//!
//! Rows carry no extra columns (ids, cells): OpenAI's upload validator and some loaders reject
//! unknown keys. The link back to records is `splits.jsonl` beside the files.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;

use anyhow::{Context, Result, bail};
use arrow::datatypes::FieldRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};
use serde_arrow::schema::{SchemaLike, TracingOptions};

/// One training-file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExportFormat {
    /// OpenAI chat fine-tuning JSONL (`messages`).
    Openai,
    /// TRL conversational (`messages`).
    Trl,
    /// TRL prompt-completion, conversational (`prompt`, `completion`).
    TrlPromptCompletion,
    /// ShareGPT (`conversations` of `from` / `value`).
    Sharegpt,
    /// TRL preference, conversational (`prompt`, `chosen`, `rejected`).
    TrlPreference,
    /// OpenAI DPO (`input`, `preferred_output`, `non_preferred_output`).
    OpenaiDpo,
    /// TRL unpaired preference / KTO (`prompt`, `completion`, `label`).
    TrlUnpaired,
}

/// What kind of data a format holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatKind {
    /// One response per input (supervised fine-tuning).
    Sft,
    /// A chosen and a rejected response per input.
    Preference,
    /// Single responses with a good/bad label.
    Unpaired,
}

impl ExportFormat {
    /// Every format, SFT first.
    pub const ALL: [ExportFormat; 7] = [
        ExportFormat::Openai,
        ExportFormat::Trl,
        ExportFormat::TrlPromptCompletion,
        ExportFormat::Sharegpt,
        ExportFormat::TrlPreference,
        ExportFormat::OpenaiDpo,
        ExportFormat::TrlUnpaired,
    ];

    /// The name on the command line and the sub-directory the files go to.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Openai => "openai",
            ExportFormat::Trl => "trl",
            ExportFormat::TrlPromptCompletion => "trl-prompt-completion",
            ExportFormat::Sharegpt => "sharegpt",
            ExportFormat::TrlPreference => "trl-preference",
            ExportFormat::OpenaiDpo => "openai-dpo",
            ExportFormat::TrlUnpaired => "trl-unpaired",
        }
    }

    /// SFT, preference or unpaired.
    pub fn kind(self) -> FormatKind {
        match self {
            ExportFormat::Openai
            | ExportFormat::Trl
            | ExportFormat::TrlPromptCompletion
            | ExportFormat::Sharegpt => FormatKind::Sft,
            ExportFormat::TrlPreference | ExportFormat::OpenaiDpo => FormatKind::Preference,
            ExportFormat::TrlUnpaired => FormatKind::Unpaired,
        }
    }

    /// The top-level field names of a row, in order.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ExportFormat::Openai | ExportFormat::Trl => &["messages"],
            ExportFormat::TrlPromptCompletion => &["prompt", "completion"],
            ExportFormat::Sharegpt => &["conversations"],
            ExportFormat::TrlPreference => &["prompt", "chosen", "rejected"],
            ExportFormat::OpenaiDpo => &["input", "preferred_output", "non_preferred_output"],
            ExportFormat::TrlUnpaired => &["prompt", "completion", "label"],
        }
    }

    /// Who reads it, for the dataset card.
    pub fn describe(self) -> &'static str {
        match self {
            ExportFormat::Openai => "OpenAI chat fine-tuning (SFT)",
            ExportFormat::Trl => "TRL SFTTrainer, conversational",
            ExportFormat::TrlPromptCompletion => "TRL SFTTrainer, conversational prompt-completion",
            ExportFormat::Sharegpt => "ShareGPT (axolotl, LLaMA-Factory, FastChat)",
            ExportFormat::TrlPreference => {
                "TRL DPOTrainer and other preference trainers, conversational"
            }
            ExportFormat::OpenaiDpo => "OpenAI preference fine-tuning (DPO)",
            ExportFormat::TrlUnpaired => "TRL KTOTrainer, unpaired preference, conversational",
        }
    }
}

impl fmt::Display for ExportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExportFormat {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        if s == "sft" || s == "all" || s == "preference" {
            bail!(
                "`{s}` names a group\nhint: use --format once per format, or leave it out for all of them"
            );
        }
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .with_context(|| {
                let names: Vec<&str> = ExportFormat::ALL.iter().map(|f| f.as_str()).collect();
                format!(
                    "unknown export format `{s}`\nhint: choose from {}",
                    names.join(", ")
                )
            })
    }
}

/// A chat message (OpenAI and TRL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// The text.
    pub content: String,
}

impl Message {
    /// A message with this role.
    pub fn new(role: &str, content: &str) -> Message {
        Message {
            role: role.to_string(),
            content: content.to_string(),
        }
    }
}

/// A ShareGPT turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `system`, `human` or `gpt`.
    pub from: String,
    /// The text.
    pub value: String,
}

/// `messages`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MessagesRow {
    /// The whole conversation.
    pub messages: Vec<Message>,
}

/// `prompt`, `completion` (conversational).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PromptCompletionRow {
    /// System and user messages.
    pub prompt: Vec<Message>,
    /// The assistant message.
    pub completion: Vec<Message>,
}

/// `conversations`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShareGptRow {
    /// The turns.
    pub conversations: Vec<Turn>,
}

/// `prompt`, `chosen`, `rejected` (conversational).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreferenceRow {
    /// System and user messages.
    pub prompt: Vec<Message>,
    /// The better assistant message.
    pub chosen: Vec<Message>,
    /// The worse assistant message.
    pub rejected: Vec<Message>,
}

/// OpenAI DPO `input`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DpoInput {
    /// System and user messages.
    pub messages: Vec<Message>,
}

/// `input`, `preferred_output`, `non_preferred_output`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenAiDpoRow {
    /// The prompt.
    pub input: DpoInput,
    /// The better assistant message.
    pub preferred_output: Vec<Message>,
    /// The worse assistant message.
    pub non_preferred_output: Vec<Message>,
}

/// `prompt`, `completion`, `label`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UnpairedRow {
    /// System and user messages.
    pub prompt: Vec<Message>,
    /// The assistant message.
    pub completion: Vec<Message>,
    /// True when the completion is desirable.
    pub label: bool,
}

/// One exportable example: the prompt messages and what the judge made of the responses.
#[derive(Debug, Clone)]
pub struct Example {
    /// System (optional) and user messages.
    pub prompt: Vec<Message>,
    /// The SFT response.
    pub sft: String,
    /// The rejected response, when a preference pair passed the judge's margin.
    pub rejected: Option<String>,
}

/// Writes one format's rows for one split as `<stem>.jsonl` and `<stem>.parquet` in `dir`;
/// returns the number of rows.
pub fn write_split(
    dir: &Path,
    stem: &str,
    format: ExportFormat,
    examples: &[&Example],
) -> Result<u64> {
    match format {
        ExportFormat::Openai | ExportFormat::Trl => {
            let rows: Vec<MessagesRow> = examples
                .iter()
                .map(|e| MessagesRow {
                    messages: with(&e.prompt, Message::new("assistant", &e.sft)),
                })
                .collect();
            write_both(dir, stem, &rows)
        }
        ExportFormat::TrlPromptCompletion => {
            let rows: Vec<PromptCompletionRow> = examples
                .iter()
                .map(|e| PromptCompletionRow {
                    prompt: e.prompt.clone(),
                    completion: vec![Message::new("assistant", &e.sft)],
                })
                .collect();
            write_both(dir, stem, &rows)
        }
        ExportFormat::Sharegpt => {
            let rows: Vec<ShareGptRow> = examples
                .iter()
                .map(|e| ShareGptRow {
                    conversations: with(&e.prompt, Message::new("assistant", &e.sft))
                        .into_iter()
                        .map(|m| Turn {
                            from: match m.role.as_str() {
                                "user" => "human".to_string(),
                                "assistant" => "gpt".to_string(),
                                other => other.to_string(),
                            },
                            value: m.content,
                        })
                        .collect(),
                })
                .collect();
            write_both(dir, stem, &rows)
        }
        ExportFormat::TrlPreference => {
            let rows: Vec<PreferenceRow> = examples
                .iter()
                .filter_map(|e| {
                    Some(PreferenceRow {
                        prompt: e.prompt.clone(),
                        chosen: vec![Message::new("assistant", &e.sft)],
                        rejected: vec![Message::new("assistant", e.rejected.as_deref()?)],
                    })
                })
                .collect();
            write_both(dir, stem, &rows)
        }
        ExportFormat::OpenaiDpo => {
            let rows: Vec<OpenAiDpoRow> = examples
                .iter()
                .filter_map(|e| {
                    Some(OpenAiDpoRow {
                        input: DpoInput {
                            messages: e.prompt.clone(),
                        },
                        preferred_output: vec![Message::new("assistant", &e.sft)],
                        non_preferred_output: vec![Message::new(
                            "assistant",
                            e.rejected.as_deref()?,
                        )],
                    })
                })
                .collect();
            write_both(dir, stem, &rows)
        }
        ExportFormat::TrlUnpaired => {
            let mut rows = Vec::new();
            for e in examples {
                // Only judged records are unpaired data: without a rejected response there is no
                // evidence the chosen one is better than any other.
                let Some(rejected) = &e.rejected else {
                    continue;
                };
                rows.push(UnpairedRow {
                    prompt: e.prompt.clone(),
                    completion: vec![Message::new("assistant", &e.sft)],
                    label: true,
                });
                rows.push(UnpairedRow {
                    prompt: e.prompt.clone(),
                    completion: vec![Message::new("assistant", rejected)],
                    label: false,
                });
            }
            write_both(dir, stem, &rows)
        }
    }
}

fn with(prompt: &[Message], last: Message) -> Vec<Message> {
    let mut out = prompt.to_vec();
    out.push(last);
    out
}

pub(crate) fn write_both<T>(dir: &Path, stem: &str, rows: &[T]) -> Result<u64>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let jsonl = dir.join(format!("{stem}.jsonl"));
    let mut buf = Vec::new();
    for row in rows {
        serde_json::to_writer(&mut buf, row)?;
        buf.push(b'\n');
    }
    fs::write(&jsonl, &buf).with_context(|| format!("cannot write {}", jsonl.display()))?;
    let parquet = dir.join(format!("{stem}.parquet"));
    let bytes =
        parquet_bytes(rows).with_context(|| format!("cannot encode {}", parquet.display()))?;
    let mut file = fs::File::create(&parquet)
        .with_context(|| format!("cannot write {}", parquet.display()))?;
    file.write_all(&bytes)
        .with_context(|| format!("cannot write {}", parquet.display()))?;
    file.sync_all()
        .with_context(|| format!("cannot sync {}", parquet.display()))?;
    Ok(rows.len() as u64)
}

/// Rows as one Parquet file: plain string, bool, struct and list columns, zstd, traced from the
/// row type so an empty split still has the full schema (HF `datasets` needs it to load).
fn parquet_bytes<T>(rows: &[T]) -> Result<Vec<u8>>
where
    T: Serialize + for<'de> Deserialize<'de>,
{
    let fields = Vec::<FieldRef>::from_type::<T>(
        // Plain (not large) strings and lists: the types every `datasets` and pandas version reads.
        TracingOptions::default()
            .strings_as_large_utf8(false)
            .sequence_as_large_list(false),
    )?;
    let batch = serde_arrow::to_record_batch(&fields, &rows)?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let mut buf = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buf, batch.schema(), Some(props))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(buf)
}
