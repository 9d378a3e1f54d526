//! Label: give every record, per taxonomy dimension, the values that fit, each with a confidence
//! and the method that found it.
//!
//! # Why three methods
//!
//! - **prototype** ([`prototype`]): zero-shot. Needs nothing but the taxonomy: each value's
//!   description, keywords and examples are embedded, and a record takes the value it is most
//!   similar to, or none when it is not similar enough to any (a cut-off calibrated from the
//!   taxonomy's own texts). The day-one labeller, and the weakest.
//! - **trained** ([`linear`], [`tfidf`]): a one-vs-rest logistic regression per dimension on
//!   TF-IDF word unigrams + bigrams (and character 2–4-grams) beside the same embeddings (or either alone), trained from
//!   labelled records: a user's labelled file (with a mapping from its
//!   labels to taxonomy values) or synthetic records, whose `intended` cell is known by
//!   construction. Per-label thresholds are tuned on a held-out split. `label train` writes a
//!   [`LabelModel`] JSON file; `label --model` applies it. Much better when labels exist; measured
//!   on GoEmotions in BENCHMARKS.md.
//! - **llm** ([`llm`]): the model is asked, with a strict one-line-per-dimension answer format and
//!   a parse check that rejects the whole answer if anything in it is off.
//!
//! # The stage
//!
//! [`label`] streams the input dataset in batches, embeds (prototype, trained) or prompts (llm),
//! and writes every record to a new dataset with its `labels` for this method replaced (labels from
//! other methods stay, so methods can be compared record by record). A dimension with no value
//! above its cut-off gets no label: "none of these" is the absence of a label, counted per
//! dimension in the summary. Records are never dropped; flagged ones are labelled too.

pub mod linear;
pub mod llm;
pub mod prototype;
pub mod tfidf;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use aligndata_core::{Label, Record, Taxonomy};
use aligndata_dataset::{Dataset, DatasetWriter, Format, ManifestFields, WriterOptions};
use aligndata_models::embed::Embedder;
use aligndata_models::llm::Llm;

pub use linear::{
    LinearClassifier, Rows, Solver, TrainConfig, best_threshold, f1_scores, holdout_split,
};
pub use prototype::{PrototypeConfig, PrototypeMode, Prototypes};
pub use tfidf::{Tfidf, TfidfConfig};

/// Method names written into `Label::method`.
pub const METHOD_PROTOTYPE: &str = "prototype";
/// See [`METHOD_PROTOTYPE`].
pub const METHOD_TRAINED: &str = "trained";
/// See [`METHOD_PROTOTYPE`].
pub const METHOD_LLM: &str = "llm";

/// Version of the [`LabelModel`] file format written. 1: embedding features only, weights as
/// number lists. 2: optional TF-IDF vocabulary (`tfidf`), weights packed as base64 f16; extended
/// with optional character n-grams (`tfidf.char_terms`, absent in older files, which still load;
/// an older build reading a file with them stops on the feature count). Both are read.
pub const MODEL_FORMAT: u32 = 2;

const BATCH: usize = 512;

/// The texts that describe one taxonomy value: its description, its keywords joined, and each
/// example.
pub fn value_texts(value: &aligndata_core::taxonomy::Value) -> Vec<String> {
    let mut texts = vec![value.description.clone()];
    if !value.keywords.is_empty() {
        texts.push(value.keywords.join(", "));
    }
    texts.extend(value.examples.iter().cloned());
    texts
}

/// One [`Prototypes`] per taxonomy dimension, in taxonomy order.
pub fn taxonomy_prototypes(
    taxonomy: &Taxonomy,
    embedder: &dyn Embedder,
    config: &PrototypeConfig,
) -> Result<Vec<Prototypes>> {
    taxonomy
        .dimensions
        .iter()
        .map(|dim| {
            let labels: Vec<(String, Vec<String>)> = dim
                .values
                .iter()
                .map(|v| (v.id.clone(), value_texts(v)))
                .collect();
            Prototypes::build(embedder, &labels, config.clone())
                .with_context(|| format!("building prototypes for dimension `{}`", dim.id))
        })
        .collect()
}

/// A trained labeller, as saved by `aligndata label train`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelModel {
    /// [`MODEL_FORMAT`].
    pub format: u32,
    /// The embedder kind the dense features come from (`hashed`, `static`, `minilm`), or
    /// `none` for a TF-IDF-only model.
    pub embedder: String,
    /// The embedder's own name, e.g. `minilm-l6-v2` (`none` without one).
    pub embedder_name: String,
    /// Embedding length (0 without an embedder).
    pub dim: usize,
    /// TF-IDF vocabulary of the word features beside the embedding (format 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tfidf: Option<Tfidf>,
    /// The taxonomy it was trained for (its name).
    pub taxonomy: String,
    /// One classifier per dimension that had training labels.
    pub dimensions: Vec<DimensionModel>,
    /// Where the training labels came from, in words.
    pub trained_on: String,
    /// Training examples used (held-out split included).
    pub examples: usize,
    /// The training settings.
    pub config: TrainConfig,
}

/// The classifier of one dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DimensionModel {
    /// Dimension id.
    pub id: String,
    /// Labels are the dimension's value ids.
    pub classifier: LinearClassifier,
}

impl LabelModel {
    /// Writes the model as JSON (atomically).
    pub fn save(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self)?;
        aligndata_dataset::write_atomic(path, &json)
            .with_context(|| format!("could not write the model to {}", path.display()))?;
        Ok(())
    }

    /// Reads and checks a model file.
    pub fn load(path: &Path) -> Result<LabelModel> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("could not read the model file {}", path.display()))?;
        // The format first, so a newer file says so instead of failing on a field.
        let format = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("format").and_then(|f| f.as_u64()));
        match format {
            Some(1..=2) => {}
            Some(other) => bail!(
                "{} has model format {other}, this build reads formats 1 and 2\nhint: use the aligndata that wrote it, or retrain with `aligndata label train`",
                path.display()
            ),
            None => bail!(
                "{} is not a label model (written by `aligndata label train`): no `format` field",
                path.display()
            ),
        }
        let mut model: LabelModel = serde_json::from_slice(&bytes).with_context(|| {
            format!(
                "{} is not a label model (written by `aligndata label train`)",
                path.display()
            )
        })?;
        if let Some(t) = model.tfidf.take() {
            model.tfidf = Some(
                t.ready()
                    .with_context(|| format!("{}: the TF-IDF vocabulary", path.display()))?,
            );
        }
        let n_sparse = model.tfidf.as_ref().map_or(0, Tfidf::len);
        for d in &model.dimensions {
            d.classifier
                .validate()
                .with_context(|| format!("{}: dimension `{}`", path.display(), d.id))?;
            if d.classifier.dense_dim() != model.dim || d.classifier.sparse != n_sparse {
                bail!(
                    "{}: dimension `{}` expects {} embedding and {} TF-IDF features, the model has {} and {}",
                    path.display(),
                    d.id,
                    d.classifier.dense_dim(),
                    d.classifier.sparse,
                    model.dim,
                    n_sparse
                );
            }
        }
        Ok(model)
    }

    /// Whether the model needs an embedder (it has embedding features).
    pub fn needs_embedder(&self) -> bool {
        self.dim > 0
    }

    /// Each text's sparse TF-IDF row (empty rows without a vocabulary).
    pub fn tfidf_rows(&self, texts: &[&str]) -> Vec<Vec<(u32, f32)>> {
        match &self.tfidf {
            Some(t) => texts.par_iter().map(|x| t.transform(x)).collect(),
            None => vec![Vec::new(); texts.len()],
        }
    }

    /// Per text, per model dimension (in `dimensions` order), each label's probability.
    /// `embedder` is needed when [`LabelModel::needs_embedder`].
    pub fn probabilities(
        &self,
        embedder: Option<&dyn Embedder>,
        texts: &[&str],
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        let dense = self.embed(embedder, texts)?;
        let sparse = self.tfidf_rows(texts);
        Ok(sparse
            .iter()
            .zip(&dense)
            .map(|(s, d)| {
                self.dimensions
                    .iter()
                    .map(|dim| dim.classifier.probabilities_of(&dim.classifier.input(s, d)))
                    .collect()
            })
            .collect())
    }

    fn embed(&self, embedder: Option<&dyn Embedder>, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        if !self.needs_embedder() {
            return Ok(vec![Vec::new(); texts.len()]);
        }
        let embedder = embedder.context("the trained labeller needs an embedder")?;
        if embedder.dim() != self.dim {
            bail!(
                "the model was trained on {}-d features ({}), the embedder gives {}-d ({})",
                self.dim,
                self.embedder_name,
                embedder.dim(),
                embedder.name()
            );
        }
        embedder.embed(texts)
    }

    /// Checks that the model fits `taxonomy`: every dimension and value it predicts exists there.
    pub fn check_taxonomy(&self, taxonomy: &Taxonomy) -> Result<()> {
        for d in &self.dimensions {
            let Some(dim) = taxonomy.dimension(&d.id) else {
                bail!(
                    "the model labels dimension `{}`, which the taxonomy does not have\nhint: retrain with `aligndata label train` on this taxonomy",
                    d.id
                );
            };
            for l in &d.classifier.labels {
                if !dim.values.iter().any(|v| &v.id == l) {
                    bail!(
                        "the model labels `{}={l}`, which the taxonomy does not have\nhint: retrain with `aligndata label train` on this taxonomy",
                        d.id
                    );
                }
            }
        }
        Ok(())
    }
}

/// What labels a batch.
pub enum Labeller<'a> {
    /// Zero-shot prototypes, one per taxonomy dimension (see [`taxonomy_prototypes`]).
    Prototype(Vec<Prototypes>),
    /// A trained model.
    Trained(&'a LabelModel),
    /// A language model.
    Llm(&'a dyn Llm),
}

impl Labeller<'_> {
    /// The method name written into the labels.
    pub fn method(&self) -> &'static str {
        match self {
            Labeller::Prototype(_) => METHOD_PROTOTYPE,
            Labeller::Trained(_) => METHOD_TRAINED,
            Labeller::Llm(_) => METHOD_LLM,
        }
    }

    /// Labels for each text. `embedder` is needed by prototype and trained. The second value
    /// counts LLM answers that failed the parse check.
    pub fn label_texts(
        &self,
        taxonomy: &Taxonomy,
        embedder: Option<&dyn Embedder>,
        texts: &[&str],
    ) -> Result<(Vec<Vec<Label>>, u64)> {
        let method = self.method();
        let mk = |dim: &str, value: &str, confidence: f32| Label {
            dimension: dim.to_string(),
            value: value.to_string(),
            confidence: (confidence as f64 * 1e4).round() / 1e4,
            method: method.to_string(),
        };
        match self {
            Labeller::Prototype(protos) => {
                let embedder = embedder.context("the prototype labeller needs an embedder")?;
                let vectors = embedder.embed(texts)?;
                Ok((
                    vectors
                        .iter()
                        .map(|v| {
                            let mut labels = Vec::new();
                            for (dim, p) in taxonomy.dimensions.iter().zip(protos) {
                                for (i, c) in p.predict(v) {
                                    labels.push(mk(&dim.id, &p.labels[i], c));
                                }
                            }
                            labels
                        })
                        .collect(),
                    0,
                ))
            }
            Labeller::Trained(model) => {
                let vectors = model.embed(embedder, texts)?;
                let rows = model.tfidf_rows(texts);
                Ok((
                    vectors
                        .iter()
                        .zip(&rows)
                        .map(|(v, row)| {
                            let mut labels = Vec::new();
                            for d in &model.dimensions {
                                let mut found =
                                    d.classifier.predict_of(&d.classifier.input(row, v));
                                found.sort_by(|a, b| b.1.total_cmp(&a.1));
                                for (i, p) in found {
                                    labels.push(mk(&d.id, &d.classifier.labels[i], p));
                                }
                            }
                            labels
                        })
                        .collect(),
                    0,
                ))
            }
            Labeller::Llm(model) => {
                let requests: Vec<_> = texts.iter().map(|t| llm::request(taxonomy, t)).collect();
                let answers = model.complete_batch(&requests, &|_| {});
                let mut failures = 0;
                let labels = answers
                    .into_iter()
                    .map(|answer| {
                        match answer
                            .map_err(|e| e.to_string())
                            .and_then(|c| llm::parse(taxonomy, &c.text))
                        {
                            Ok(found) => found
                                .into_iter()
                                .filter_map(|(d, v)| v.map(|v| mk(&d, &v, 1.0)))
                                .collect(),
                            Err(_) => {
                                failures += 1;
                                Vec::new()
                            }
                        }
                    })
                    .collect();
                Ok((labels, failures))
            }
        }
    }
}

/// Counts of one dimension in a label run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DimensionSummary {
    /// Records per value.
    pub values: BTreeMap<String, u64>,
    /// Records with no value in this dimension.
    pub none: u64,
    /// `none` ÷ records.
    pub none_share: f64,
}

/// What a label run did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LabelSummary {
    /// Method used.
    pub method: String,
    /// Embedder used, if any.
    pub embedder: Option<String>,
    /// Records read and written.
    pub records: u64,
    /// Per dimension.
    pub dimensions: BTreeMap<String, DimensionSummary>,
    /// LLM answers rejected by the parse check.
    pub parse_failures: u64,
    /// Prototype: the calibrated "none" cut-off per dimension.
    pub thresholds: BTreeMap<String, f32>,
    /// Records whose `intended` cell was known, and how many of their dimensions the labels
    /// agreed with (the generator's controllability).
    pub intended_checked: u64,
    /// Of the intended (record, dimension) pairs, the share whose best label equals the intended.
    pub intended_agreement: Option<f64>,
    /// The output dataset.
    pub out: PathBuf,
}

/// Settings of a label run besides the labeller.
#[derive(Debug, Clone)]
pub struct LabelConfig {
    /// Storage format of the output dataset.
    pub format: Format,
}

/// Labels every record of the dataset at `input` into a new dataset at `out`; see the module docs.
/// `progress(records done)` is called after each batch.
pub fn label(
    input: &Path,
    out: &Path,
    taxonomy: &Taxonomy,
    labeller: &Labeller<'_>,
    embedder: Option<&dyn Embedder>,
    config: &LabelConfig,
    progress: &dyn Fn(u64),
) -> Result<LabelSummary> {
    let dataset = Dataset::open(input)
        .with_context(|| format!("could not open dataset {}", input.display()))?;
    let method = labeller.method();
    let mut summary = LabelSummary {
        method: method.to_string(),
        embedder: embedder.map(|e| e.name().to_string()),
        out: out.to_path_buf(),
        ..LabelSummary::default()
    };
    if let Labeller::Prototype(protos) = labeller {
        for (dim, p) in taxonomy.dimensions.iter().zip(protos) {
            summary
                .thresholds
                .insert(dim.id.clone(), (p.threshold * 1e4).round() / 1e4);
        }
    }
    let dims: Vec<&str> = match labeller {
        Labeller::Trained(m) => m.dimensions.iter().map(|d| d.id.as_str()).collect(),
        _ => taxonomy.dimensions.iter().map(|d| d.id.as_str()).collect(),
    };
    for d in &dims {
        summary
            .dimensions
            .insert(d.to_string(), DimensionSummary::default());
    }
    let mut writer = DatasetWriter::create(
        out,
        WriterOptions {
            format: config.format,
            ..WriterOptions::default()
        },
    )
    .with_context(|| format!("could not create dataset {}", out.display()))?;
    let (mut agree, mut pairs) = (0u64, 0u64);
    let mut batch: Vec<Record> = Vec::with_capacity(BATCH);
    let mut flush = |batch: &mut Vec<Record>,
                     summary: &mut LabelSummary,
                     writer: &mut DatasetWriter|
     -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let texts: Vec<&str> = batch.iter().map(|r| r.text.as_str()).collect();
        let (labels, failures) = labeller.label_texts(taxonomy, embedder, &texts)?;
        summary.parse_failures += failures;
        for (mut record, new) in batch.drain(..).zip(labels) {
            record.labels.retain(|l| l.method != method);
            for d in &dims {
                let ds = summary.dimensions.entry(d.to_string()).or_default();
                let mut any = false;
                for l in new.iter().filter(|l| l.dimension == *d) {
                    *ds.values.entry(l.value.clone()).or_default() += 1;
                    any = true;
                }
                if !any {
                    ds.none += 1;
                }
                if let Some(want) = record.intended.get(*d) {
                    pairs += 1;
                    if new
                        .iter()
                        .find(|l| l.dimension == *d)
                        .is_some_and(|l| &l.value == want)
                    {
                        agree += 1;
                    }
                }
            }
            if !record.intended.is_empty() {
                summary.intended_checked += 1;
            }
            record.labels.extend(new);
            summary.records += 1;
            writer.push(&record)?;
        }
        progress(summary.records);
        Ok(())
    };
    for record in dataset.records() {
        let record = record.with_context(|| format!("reading {}", input.display()))?;
        batch.push(record);
        if batch.len() == BATCH {
            flush(&mut batch, &mut summary, &mut writer)?;
        }
    }
    flush(&mut batch, &mut summary, &mut writer)?;
    for ds in summary.dimensions.values_mut() {
        ds.none_share = if summary.records == 0 {
            0.0
        } else {
            ds.none as f64 / summary.records as f64
        };
    }
    summary.intended_agreement = (pairs > 0).then(|| agree as f64 / pairs as f64);
    writer.finish(ManifestFields {
        stage: "label".into(),
        config: serde_json::json!({ "method": method, "embedder": summary.embedder, "taxonomy": taxonomy.name }),
        parents: vec![input.display().to_string()],
        extra: serde_json::to_value(&summary)?,
    })?;
    Ok(summary)
}

/// One labelled text for training: `(dimension, value)` pairs.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// The text.
    pub text: String,
    /// Its labels.
    pub labels: Vec<(String, String)>,
}

/// Where a dataset's training labels come from.
#[derive(Debug, Clone, PartialEq)]
pub enum LabelSource {
    /// The `intended` cell of synthetic records.
    Intended,
    /// The records' `labels`, optionally only those of one method.
    Labels(Option<String>),
}

/// Training examples from a dataset directory. Records without labels from `source` are skipped.
pub fn examples_from_dataset(path: &Path, source: &LabelSource) -> Result<Vec<Example>> {
    let dataset = Dataset::open(path)
        .with_context(|| format!("could not open dataset {}", path.display()))?;
    let mut out = Vec::new();
    for record in dataset.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let labels: Vec<(String, String)> = match source {
            LabelSource::Intended => record
                .intended
                .iter()
                .map(|(d, v)| (d.clone(), v.clone()))
                .collect(),
            LabelSource::Labels(method) => record
                .labels
                .iter()
                .filter(|l| method.as_ref().is_none_or(|m| &l.method == m))
                .map(|l| (l.dimension.clone(), l.value.clone()))
                .collect(),
        };
        if !labels.is_empty() {
            out.push(Example {
                text: record.text,
                labels,
            });
        }
    }
    Ok(out)
}

/// Training examples from a JSONL file: `text_field` holds the text, `label_field` a label or a
/// list of labels (dotted paths allowed). Each label becomes taxonomy `(dimension, value)` pairs
/// through `mapping` (user label → `dimension=value` strings) or, without one, by reading the
/// label itself as `dimension=value` or as a value id that only one dimension has. Labels the
/// mapping does not know are ignored and counted in the second value, by label.
pub fn examples_from_jsonl(
    path: &Path,
    taxonomy: &Taxonomy,
    text_field: &str,
    label_field: &str,
    mapping: Option<&BTreeMap<String, Vec<String>>>,
) -> Result<(Vec<Example>, BTreeMap<String, u64>)> {
    let file =
        std::fs::File::open(path).with_context(|| format!("could not open {}", path.display()))?;
    let mut out = Vec::new();
    let mut unknown: BTreeMap<String, u64> = BTreeMap::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .with_context(|| format!("{}:{}: not a JSON object", path.display(), n + 1))?;
        let Some(text) = field(&value, text_field).and_then(|v| v.as_str()) else {
            continue;
        };
        let raw: Vec<String> = match field(&value, label_field) {
            Some(serde_json::Value::Array(items)) => items.iter().map(json_label).collect(),
            Some(serde_json::Value::Null) | None => Vec::new(),
            Some(other) => json_label(other)
                .split(',')
                .map(|s| s.trim().to_string())
                .collect(),
        };
        let mut labels = Vec::new();
        for r in raw.iter().filter(|r| !r.is_empty()) {
            let targets: Vec<String> = match mapping {
                Some(m) => m.get(r).cloned().unwrap_or_default(),
                None => vec![r.clone()],
            };
            let mut hit = false;
            for t in targets {
                if let Some(pair) = resolve(taxonomy, &t) {
                    labels.push(pair);
                    hit = true;
                }
            }
            if !hit {
                *unknown.entry(r.clone()).or_default() += 1;
            }
        }
        if !labels.is_empty() {
            out.push(Example {
                text: text.to_string(),
                labels,
            });
        }
    }
    Ok((out, unknown))
}

fn json_label(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn field<'v>(value: &'v serde_json::Value, path: &str) -> Option<&'v serde_json::Value> {
    path.split('.').try_fold(value, |v, key| v.get(key))
}

/// `dimension=value` (or `dimension:value`), or a value id that exactly one dimension has.
pub fn resolve(taxonomy: &Taxonomy, label: &str) -> Option<(String, String)> {
    let label = label.trim();
    if let Some((d, v)) = label.split_once(['=', ':']) {
        let dim = taxonomy.dimension(d.trim())?;
        return dim
            .values
            .iter()
            .any(|x| x.id == v.trim())
            .then(|| (dim.id.clone(), v.trim().to_string()));
    }
    let mut hits = taxonomy
        .dimensions
        .iter()
        .filter(|d| d.values.iter().any(|v| v.id == label));
    let dim = hits.next()?;
    if hits.next().is_some() {
        return None;
    }
    Some((dim.id.clone(), label.to_string()))
}

/// What training did, per dimension.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainSummary {
    /// Examples used.
    pub examples: usize,
    /// Per dimension: examples with a label there, and held-out F1 per value.
    pub dimensions: BTreeMap<String, TrainDimension>,
    /// Dimensions skipped, with why.
    pub skipped: BTreeMap<String, String>,
}

/// Training figures of one dimension.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrainDimension {
    /// Examples with a label in this dimension (the others are negatives for every value).
    pub labelled: usize,
    /// Per value: (positives, held-out F1 if any positive was held out).
    pub values: BTreeMap<String, (usize, Option<f32>)>,
}

/// Trains a [`LabelModel`] for `taxonomy` from `examples`: TF-IDF word features when
/// `config.tfidf` is set, and the embeddings of `embedder` (whose kind name is `embedder_kind`)
/// when one is given, side by side. Dimensions with fewer than two labelled values are skipped
/// (a one-class problem teaches nothing).
pub fn train_model(
    taxonomy: &Taxonomy,
    embedder: Option<(&dyn Embedder, &str)>,
    examples: &[Example],
    trained_on: &str,
    config: &TrainConfig,
    progress: &dyn Fn(u64),
) -> Result<(LabelModel, TrainSummary)> {
    if examples.is_empty() {
        bail!("no labelled examples to train on");
    }
    if embedder.is_none() && config.tfidf.is_none() {
        bail!("no features: give an embedder, TF-IDF settings, or both");
    }
    let texts: Vec<&str> = examples.iter().map(|e| e.text.as_str()).collect();
    let mut features = Vec::with_capacity(examples.len());
    if let Some((embedder, _)) = embedder {
        for chunk in texts.chunks(BATCH) {
            features.extend(embedder.embed(chunk)?);
            progress(features.len() as u64);
        }
    }
    let tfidf = match &config.tfidf {
        Some(c) => Some(Tfidf::fit(&texts, c)?),
        None => None,
    };
    let sparse_rows = tfidf.as_ref().map(|t| {
        let mut rows = Rows::new();
        for row in texts.par_iter().map(|x| t.transform(x)).collect::<Vec<_>>() {
            rows.push(&row);
        }
        (rows, t.len())
    });
    progress(examples.len() as u64);
    let mut summary = TrainSummary {
        examples: examples.len(),
        ..TrainSummary::default()
    };
    let mut dimensions = Vec::new();
    for dim in &taxonomy.dimensions {
        let labels: Vec<String> = dim.values.iter().map(|v| v.id.clone()).collect();
        let targets: Vec<Vec<usize>> = examples
            .iter()
            .map(|e| {
                e.labels
                    .iter()
                    .filter(|(d, _)| d == &dim.id)
                    .filter_map(|(_, v)| labels.iter().position(|l| l == v))
                    .collect()
            })
            .collect();
        let labelled = targets.iter().filter(|t| !t.is_empty()).count();
        let mut counts = vec![0usize; labels.len()];
        targets.iter().flatten().for_each(|&t| counts[t] += 1);
        if counts.iter().filter(|&&c| c > 0).count() < 2 {
            summary.skipped.insert(
                dim.id.clone(),
                format!("{labelled} labelled examples cover fewer than two values"),
            );
            continue;
        }
        let classifier = LinearClassifier::train_mixed(
            labels.clone(),
            sparse_rows.as_ref().map(|(r, n)| (r, *n)),
            embedder.is_some().then_some(&features[..]),
            &targets,
            config,
        )
        .with_context(|| format!("training dimension `{}`", dim.id))?;
        let values = labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    l.clone(),
                    (counts[i], classifier.heldout_f1.get(i).copied().flatten()),
                )
            })
            .collect();
        summary
            .dimensions
            .insert(dim.id.clone(), TrainDimension { labelled, values });
        dimensions.push(DimensionModel {
            id: dim.id.clone(),
            classifier,
        });
    }
    if dimensions.is_empty() {
        bail!(
            "no dimension had labels for at least two of its values\nhint: check the label field and the label mapping"
        );
    }
    let model = LabelModel {
        format: MODEL_FORMAT,
        embedder: embedder.map_or("none", |e| e.1).to_string(),
        embedder_name: embedder.map_or("none", |e| e.0.name()).to_string(),
        dim: embedder.map_or(0, |e| e.0.dim()),
        tfidf,
        taxonomy: taxonomy.name.clone(),
        dimensions,
        trained_on: trained_on.to_string(),
        examples: examples.len(),
        config: config.clone(),
    };
    Ok((model, summary))
}

#[cfg(test)]
mod tests;

/// The labeller as generate's [`CellChecker`](crate::generate::CellChecker): each accepted
/// synthetic input is labelled and its top value per dimension compared with the cell it was
/// asked for, so the summary says how controlled the generator really is.
pub struct LabelChecker<'a> {
    /// Labels the texts.
    pub labeller: Labeller<'a>,
    /// The taxonomy the labels belong to.
    pub taxonomy: &'a Taxonomy,
    /// Embeds the texts for prototype and trained labellers.
    pub embedder: Option<&'a dyn Embedder>,
    /// Name shown in the summary, e.g. `prototype/wordllama-256`.
    pub name: String,
}

impl crate::generate::CellChecker for LabelChecker<'_> {
    fn name(&self) -> &str {
        &self.name
    }

    fn detect(&self, texts: &[&str]) -> Result<Vec<crate::generate::Detected>> {
        let (labels, _parse_failures) =
            self.labeller
                .label_texts(self.taxonomy, self.embedder, texts)?;
        Ok(labels
            .into_iter()
            .map(|labels| {
                let mut detected = crate::generate::Detected::new();
                for dimension in &self.taxonomy.dimensions {
                    let best = labels
                        .iter()
                        .filter(|l| l.dimension == dimension.id)
                        .max_by(|a, b| a.confidence.total_cmp(&b.confidence));
                    if let Some(best) = best {
                        detected.insert(dimension.id.clone(), best.value.clone());
                    }
                }
                detected
            })
            .collect())
    }
}
