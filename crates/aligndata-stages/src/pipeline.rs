//! The pipeline file: which steps to run, in order, on which inputs.
//!
//! Paths inside the file are relative to the file itself, so a pipeline travels with its
//! taxonomy and inputs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// A pipeline file as written by the user.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// A name for the run, shown in summaries.
    pub name: String,
    /// The taxonomy file.
    pub taxonomy: PathBuf,
    /// Where step outputs go (one dataset directory per step).
    #[serde(default = "default_out")]
    pub out: PathBuf,
    /// Default models the pipeline needs; fetched first if missing.
    #[serde(default)]
    pub models: Vec<String>,
    /// The steps, in order.
    pub steps: Vec<Step>,
}

fn default_out() -> PathBuf {
    PathBuf::from("out")
}

/// One step of a pipeline: `- ingest: {...}`, `- generate: {count: 100}`, …
///
/// Every step but ingest runs the subcommand of the same name; its settings are that
/// subcommand's flags (`max_tokens: 64` is `--max-tokens 64`), so the CLI's `--help` documents
/// the pipeline file too.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Read real files into a dataset.
    Ingest(IngestStep),
    /// Synthetic inputs per taxonomy cell.
    Generate(StageStep),
    /// Labelling into the taxonomy.
    Label(StageStep),
    /// Exact, near and semantic duplicates.
    Dedup(StageStep),
    /// The right subset.
    Select(StageStep),
    /// Candidate responses.
    Respond(StageStep),
    /// Rubric scores.
    Judge(StageStep),
    /// Training files.
    Export(StageStep),
    /// The HTML report.
    Report(StageStep),
}

/// A step that runs a subcommand: which datasets it reads and the flags it gets.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StageStep {
    /// Output directory name under the pipeline's `out` (default: the step's kind).
    #[serde(default)]
    pub name: Option<String>,
    /// Names of earlier steps whose outputs this step reads (default: the previous step's).
    #[serde(default)]
    pub from: Vec<String>,
    /// The subcommand's flags, by long name with `_` or `-`.
    #[serde(flatten)]
    pub flags: std::collections::BTreeMap<String, serde_json::Value>,
}

impl Step {
    /// The step's kind, as written in the file.
    pub fn kind(&self) -> &'static str {
        match self {
            Step::Ingest(_) => "ingest",
            Step::Generate(_) => "generate",
            Step::Label(_) => "label",
            Step::Dedup(_) => "dedup",
            Step::Select(_) => "select",
            Step::Respond(_) => "respond",
            Step::Judge(_) => "judge",
            Step::Export(_) => "export",
            Step::Report(_) => "report",
        }
    }

    /// The name of the step's output dataset under the pipeline's `out`.
    pub fn name(&self) -> String {
        match self {
            Step::Ingest(ingest) => ingest.name.clone(),
            Step::Generate(s)
            | Step::Label(s)
            | Step::Dedup(s)
            | Step::Select(s)
            | Step::Respond(s)
            | Step::Judge(s)
            | Step::Export(s)
            | Step::Report(s) => s.name.clone().unwrap_or_else(|| self.kind().to_string()),
        }
    }

    /// The subcommand settings, for every step but ingest.
    pub fn stage(&self) -> Option<&StageStep> {
        match self {
            Step::Ingest(_) => None,
            Step::Generate(s)
            | Step::Label(s)
            | Step::Dedup(s)
            | Step::Select(s)
            | Step::Respond(s)
            | Step::Judge(s)
            | Step::Export(s)
            | Step::Report(s) => Some(s),
        }
    }
}

/// `- ingest:` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestStep {
    /// Output dataset name under the pipeline's `out` (default `real`).
    #[serde(default = "default_ingest_name")]
    pub name: String,
    /// Input files.
    pub inputs: Vec<PathBuf>,
    /// Text field or column.
    #[serde(default = "default_text_field")]
    pub text_field: String,
    /// Id field or column.
    #[serde(default)]
    pub id_field: Option<String>,
    /// CSV/TSV: whether the first row names the columns (default true).
    #[serde(default = "default_true")]
    pub has_header: bool,
    /// When true, missing input files skip the step with a visible note instead of failing.
    #[serde(default)]
    pub optional: bool,
}

fn default_true() -> bool {
    true
}

fn default_ingest_name() -> String {
    "real".into()
}

fn default_text_field() -> String {
    "text".into()
}

impl Pipeline {
    /// Reads a pipeline file and makes its paths relative to the current directory.
    pub fn load(path: &Path) -> Result<Pipeline> {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("could not read pipeline file {}", path.display()))?;
        let mut pipeline: Pipeline =
            aligndata_core::yaml::from_yaml_str(&source, &path.display().to_string())?;
        let base = path.parent().unwrap_or(Path::new("."));
        pipeline.taxonomy = join_lexically(base, &pipeline.taxonomy);
        pipeline.out = join_lexically(base, &pipeline.out);
        for step in &mut pipeline.steps {
            if let Step::Ingest(ingest) = step {
                for input in &mut ingest.inputs {
                    *input = join_lexically(base, input);
                }
            }
        }
        Ok(pipeline)
    }
}

/// `base.join(path)` with `.` and `..` folded away, so that paths print the way a user would
/// write them (`out/self-doubt`, not `examples/self-doubt/../../out/self-doubt`). Lexical only:
/// the target may not exist yet.
fn join_lexically(base: &Path, path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in base.join(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                let last_is_normal =
                    matches!(out.components().next_back(), Some(Component::Normal(_)));
                if last_is_normal {
                    out.pop();
                } else {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_folded_relative_to_the_pipeline_file() {
        let base = Path::new("examples/self-doubt");
        assert_eq!(
            join_lexically(base, Path::new("../../out/x")),
            PathBuf::from("out/x")
        );
        assert_eq!(
            join_lexically(base, Path::new("../../../shared/a.csv")),
            PathBuf::from("../shared/a.csv")
        );
        assert_eq!(
            join_lexically(Path::new(""), Path::new("t.yaml")),
            PathBuf::from("t.yaml")
        );
        assert_eq!(
            join_lexically(Path::new("/a/b"), Path::new("/abs")),
            PathBuf::from("/abs")
        );
    }
}
