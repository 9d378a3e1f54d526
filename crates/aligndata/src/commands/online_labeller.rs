//! `serve --labeller`: the offline taxonomy labeller as the service's [`Labeller`] hook, so a
//! user message lands in the same cell online as `aligndata label` would put it offline.
//!
//! The cell is the top value per dimension (`dim=value|...`, taxonomy order), which is the
//! offline labeller's best label; where the offline labeller would say "none" (nothing above its
//! cut-off) the nearest value is still taken, because the bandit needs a context for every
//! message. A dimension a trained model does not cover is `dim=?`.

use std::path::Path;

use anyhow::{Context, Result, bail};

use aligndata_core::Taxonomy;
use aligndata_models::embed::{Embedder, EmbedderKind, load_embedder};
use aligndata_server::policy::Labeller;
use aligndata_stages::label::{LabelModel, PrototypeConfig, Prototypes, taxonomy_prototypes};

use crate::ui::Ui;

enum Method {
    Prototype(Vec<Prototypes>),
    Trained(Box<LabelModel>),
}

/// Labels user messages into taxonomy cells.
pub struct TaxonomyLabeller {
    taxonomy: Taxonomy,
    embedder: Box<dyn Embedder>,
    method: Method,
    /// `prototype/wordllama-256` or `trained/minilm-l6-v2`, for the start-up line.
    pub name: String,
}

impl TaxonomyLabeller {
    /// `spec` is `prototype` or a MODEL.json path.
    pub fn load(spec: &str, taxonomy_path: Option<&Path>, ui: &Ui) -> Result<TaxonomyLabeller> {
        let taxonomy_path = taxonomy_path.with_context(|| {
            format!("--labeller {spec} needs --taxonomy FILE (the taxonomy to label into)")
        })?;
        let taxonomy = Taxonomy::load(taxonomy_path)?;
        let note = |m: &str| ui.note(&format!("  {m}"));
        let (embedder, method) = if spec == "prototype" {
            // Static vectors: microseconds per message, as generate's cell check uses.
            let embedder = load_embedder(EmbedderKind::Static, ui.offline, &note)
                .context("loading the embedder for --labeller prototype")?;
            let protos =
                taxonomy_prototypes(&taxonomy, embedder.as_ref(), &PrototypeConfig::default())?;
            (embedder, Method::Prototype(protos))
        } else {
            let path = Path::new(spec);
            if !path.is_file() {
                bail!(
                    "--labeller {spec}: expected `prototype`, `none` or a model file from `aligndata label train`"
                );
            }
            let model = LabelModel::load(path)?;
            model.check_taxonomy(&taxonomy)?;
            // A TF-IDF-only model needs no embedder; static vectors stand in (never called).
            let kind: EmbedderKind = if model.needs_embedder() {
                model.embedder.parse()?
            } else {
                EmbedderKind::Static
            };
            let embedder = load_embedder(kind, ui.offline, &note)
                .with_context(|| format!("loading the embedder {spec} was trained on"))?;
            (embedder, Method::Trained(Box::new(model)))
        };
        let name = format!(
            "{}/{}",
            match method {
                Method::Prototype(_) => "prototype",
                Method::Trained(_) => "trained",
            },
            embedder.name()
        );
        Ok(TaxonomyLabeller {
            taxonomy,
            embedder,
            method,
            name,
        })
    }

    fn try_cell(&self, message: &str) -> Result<String> {
        let parts: Vec<String> = match &self.method {
            Method::Prototype(protos) => {
                let vector = self
                    .embedder
                    .embed(&[message])?
                    .into_iter()
                    .next()
                    .context("the embedder returned nothing")?;
                self.taxonomy
                    .dimensions
                    .iter()
                    .zip(protos)
                    .map(|(dim, p)| {
                        let value =
                            argmax(&p.scores(&vector)).map_or("?", |i| p.labels[i].as_str());
                        format!("{}={value}", dim.id)
                    })
                    .collect()
            }
            Method::Trained(model) => {
                // Per model dimension, each value's probability (TF-IDF words and embedding).
                let probs = model
                    .probabilities(Some(self.embedder.as_ref()), &[message])?
                    .into_iter()
                    .next()
                    .context("the labeller returned nothing")?;
                self.taxonomy
                    .dimensions
                    .iter()
                    .map(|dim| {
                        let value = model
                            .dimensions
                            .iter()
                            .zip(&probs)
                            .find(|(d, _)| d.id == dim.id)
                            .and_then(|(d, p)| argmax(p).map(|i| d.classifier.labels[i].as_str()))
                            .unwrap_or("?");
                        format!("{}={value}", dim.id)
                    })
                    .collect()
            }
        };
        Ok(parts.join("|"))
    }
}

fn argmax(xs: &[f32]) -> Option<usize> {
    xs.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

impl Labeller for TaxonomyLabeller {
    fn cell(&self, user_message: &str) -> String {
        match self.try_cell(user_message) {
            Ok(cell) => cell,
            Err(err) => {
                // The turn is still worth storing; it goes to a cell the plan reports as unmatched.
                eprintln!("aligndata serve: could not label a message: {err:#}");
                "unlabelled".to_string()
            }
        }
    }
}
