//! Persona and style facets: the data file (`persona.yaml`) and sampling from it.
//!
//! Why a data file: the words (ages, occupations, registers) are the user's to change, and the
//! code must not know them. The only things the code knows are the optional *effects* a style
//! value may carry for the model-free template backend (lower case, sentence count, phrase
//! banks, typo rate), which are not domain words.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::rng::Rng;

/// One value of a facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facet {
    /// The value.
    pub id: String,
    /// Shown to prompt templates.
    #[serde(default)]
    pub description: Option<String>,
    /// Relative share (default 1).
    #[serde(default)]
    pub weight: Option<f64>,
    /// Template backend: write in lower case.
    #[serde(default)]
    pub lowercase: bool,
    /// Template backend: drop the final full stop.
    #[serde(default)]
    pub no_final_period: bool,
    /// Template backend: sentences to compose.
    #[serde(default)]
    pub sentences: Option<usize>,
    /// Template backend: possible first phrases.
    #[serde(default)]
    pub openers: Vec<String>,
    /// Template backend: possible last phrases.
    #[serde(default)]
    pub closers: Vec<String>,
    /// Template backend: phrases that may start a sentence.
    #[serde(default)]
    pub hedges: Vec<String>,
    /// Template backend: what joins sentences.
    #[serde(default)]
    pub joiner: Option<String>,
    /// Template backend: share of words with a swapped-letter typo.
    #[serde(default)]
    pub typo_rate: Option<f64>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum FacetSpec {
    Plain(String),
    Full(Facet),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonaFile {
    #[serde(default)]
    persona: BTreeMap<String, Vec<FacetSpec>>,
    #[serde(default)]
    style: BTreeMap<String, Vec<FacetSpec>>,
}

/// The facets to sample from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersonaSpace {
    /// Who writes (age band, occupation, ...).
    pub persona: BTreeMap<String, Vec<Facet>>,
    /// How they write (register, length, form, typos, hedging, ...).
    pub style: BTreeMap<String, Vec<Facet>>,
}

/// One sample: a value per facet.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Persona {
    /// Facet → value id.
    pub persona: BTreeMap<String, String>,
    /// Facet → the whole style value.
    pub style: BTreeMap<String, Facet>,
}

impl PersonaSpace {
    /// Parses a persona file's text.
    pub fn parse(source: &str, file: &str) -> Result<PersonaSpace> {
        let raw: PersonaFile = aligndata_core::yaml::from_yaml_str(source, file)?;
        let convert =
            |m: BTreeMap<String, Vec<FacetSpec>>| -> Result<BTreeMap<String, Vec<Facet>>> {
                let mut out = BTreeMap::new();
                for (name, specs) in m {
                    if specs.is_empty() {
                        bail!("{file}: facet `{name}` has no values");
                    }
                    let mut values = Vec::new();
                    for s in specs {
                        let f = match s {
                            FacetSpec::Plain(id) => Facet {
                                id,
                                ..Facet::default()
                            },
                            FacetSpec::Full(f) => f,
                        };
                        if let Some(w) = f.weight
                            && !(w > 0.0 && w.is_finite())
                        {
                            bail!(
                                "{file}: facet `{name}` value `{}`: weight must be > 0",
                                f.id
                            );
                        }
                        values.push(f);
                    }
                    out.insert(name, values);
                }
                Ok(out)
            };
        Ok(PersonaSpace {
            persona: convert(raw.persona)?,
            style: convert(raw.style)?,
        })
    }

    /// Reads a persona file.
    pub fn load(path: &Path) -> Result<PersonaSpace> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read persona file {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Draws one value per facet.
    pub fn sample(&self, rng: &mut Rng) -> Persona {
        let draw = |values: &[Facet], rng: &mut Rng| -> Facet {
            let w: Vec<f64> = values.iter().map(|v| v.weight.unwrap_or(1.0)).collect();
            values[rng.weighted(&w)].clone()
        };
        Persona {
            persona: self
                .persona
                .iter()
                .map(|(k, v)| (k.clone(), draw(v, rng).id))
                .collect(),
            style: self
                .style
                .iter()
                .map(|(k, v)| (k.clone(), draw(v, rng)))
                .collect(),
        }
    }
}

impl Persona {
    /// Compact provenance text: `age_band=twenties; ...; style: register=texting; ...`.
    pub fn provenance(&self) -> String {
        let p: Vec<String> = self
            .persona
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let s: Vec<String> = self
            .style
            .iter()
            .map(|(k, v)| format!("{k}={}", v.id))
            .collect();
        format!("{}; style: {}", p.join("; "), s.join("; "))
    }
}
