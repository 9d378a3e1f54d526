//! Prompt templates: minijinja files the user can copy and edit.
//!
//! Two kinds, because of what small models can do (see DESIGN.md): a *continuation* prompt (a
//! tagged list of example user messages ending in an open line for the target cell; for small
//! local models, which answer instructions as the assistant) and an *instruction* prompt (for
//! capable models behind an OpenAI-compatible server). Each record's provenance names the
//! template (`file#hash-of-its-source`) and the hash of the rendered prompt.

use std::path::Path;

use anyhow::{Context, Result};
use minijinja::value::Serde;
use serde::Serialize;

use aligndata_core::{Cell, Taxonomy};

use super::persona::Persona;
use super::rng::Rng;

/// How the prompt is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PromptKind {
    /// Raw continuation, one line, stops at the newline.
    Continuation,
    /// One chat message from the user.
    Instruction,
}

/// A loaded template.
#[derive(Debug, Clone)]
pub struct PromptTemplate {
    /// `file#hash`, recorded in provenance.
    pub id: String,
    /// How its output is sent.
    pub kind: PromptKind,
    source: String,
}

#[derive(Serialize)]
struct CellValue<'a> {
    dimension: &'a str,
    value: &'a str,
    description: &'a str,
    keywords: &'a [String],
    examples: &'a [String],
}

#[derive(Serialize)]
struct FewShot {
    tags: String,
    text: String,
}

/// The default templates, shipped beside the example taxonomy.
pub const DEFAULT_CONTINUATION: &str =
    include_str!("../../../../examples/self-doubt/templates/continuation.j2");
/// See [`DEFAULT_CONTINUATION`].
pub const DEFAULT_INSTRUCTION: &str =
    include_str!("../../../../examples/self-doubt/templates/instruction.j2");
/// The default persona and style facets.
pub const DEFAULT_PERSONA: &str =
    include_str!("../../../../examples/self-doubt/templates/persona.yaml");

impl PromptTemplate {
    /// A template from its text; `name` is its file name.
    pub fn new(name: &str, source: String, kind: PromptKind) -> Result<PromptTemplate> {
        let env = minijinja::Environment::new();
        env.template_from_str(&source)
            .with_context(|| format!("template {name} does not parse"))?;
        let hash = xxhash_rust::xxh3::xxh3_64(source.as_bytes());
        Ok(PromptTemplate {
            id: format!("{name}#{:08x}", hash >> 32),
            kind,
            source,
        })
    }

    /// Reads `dir/<kind>.j2`, or the built-in default when `dir` is None or has no such file.
    pub fn load(dir: Option<&Path>, kind: PromptKind) -> Result<PromptTemplate> {
        let name = match kind {
            PromptKind::Continuation => "continuation.j2",
            PromptKind::Instruction => "instruction.j2",
        };
        if let Some(dir) = dir {
            let path = dir.join(name);
            if path.exists() {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                return Self::new(name, text, kind);
            }
        }
        let text = match kind {
            PromptKind::Continuation => DEFAULT_CONTINUATION,
            PromptKind::Instruction => DEFAULT_INSTRUCTION,
        };
        Self::new(name, text.to_string(), kind)
    }

    /// Renders the prompt for `cell` and `persona`; `rng` picks at most `fewshot` example lines.
    pub fn render(
        &self,
        taxonomy: &Taxonomy,
        cell: &Cell,
        persona: &Persona,
        fewshot: usize,
        rng: &mut Rng,
    ) -> Result<String> {
        let mut values = Vec::new();
        let mut tags = Vec::new();
        for (d, dim) in taxonomy.dimensions.iter().enumerate() {
            if let Some(v) = taxonomy.cell_value(cell, d) {
                values.push(CellValue {
                    dimension: &dim.id,
                    value: &v.id,
                    description: &v.description,
                    keywords: &v.keywords,
                    examples: &v.examples,
                });
                tags.push(format!("{}: {}", dim.id, v.id));
            }
        }
        let fewshot = few_shot(taxonomy, cell, rng, fewshot);
        let env = minijinja::Environment::new();
        let template = env.template_from_str(&self.source)?;
        let rendered = template
            .render(minijinja::context! {
                cell => Serde(&values),
                tags => tags.join(" | "),
                fewshot => Serde(&fewshot),
                persona => Serde(&persona.persona),
                style => Serde(&persona.style),
            })
            .with_context(|| format!("template {} failed to render", self.id))?;
        Ok(rendered)
    }
}

/// Example lines for the few-shot block: every example of the cell's own values, plus examples
/// of other values for contrast, shuffled, at most `max`. Each is tagged with the one value it
/// illustrates (the taxonomy does not say the other dimensions of an example).
fn few_shot(taxonomy: &Taxonomy, cell: &Cell, rng: &mut Rng, max: usize) -> Vec<FewShot> {
    let mut own = Vec::new();
    let mut other = Vec::new();
    for (d, dim) in taxonomy.dimensions.iter().enumerate() {
        for (v, value) in dim.values.iter().enumerate() {
            for e in &value.examples {
                let line = FewShot {
                    tags: format!("{}: {}", dim.id, value.id),
                    text: one_line(e),
                };
                if cell.0.get(d) == Some(&v) {
                    own.push(line)
                } else {
                    other.push(line)
                }
            }
        }
    }
    rng.shuffle(&mut own);
    rng.shuffle(&mut other);
    own.truncate(max * 2 / 3);
    let rest = max.saturating_sub(own.len());
    own.extend(other.into_iter().take(rest));
    rng.shuffle(&mut own);
    own
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The 16-hex-digit hash of a rendered prompt.
pub fn prompt_hash(prompt: &str) -> String {
    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(prompt.as_bytes()))
}
