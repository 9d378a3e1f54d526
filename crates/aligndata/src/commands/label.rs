//! `aligndata label` and `aligndata label train`: flags → a labeller (prototype, trained, llm)
//! and its embedder → the label stage; or labelled examples → a saved model.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_models::embed::{Embedder, EmbedderKind, load_embedder};
use aligndata_models::llm::cache::default_cache_dir;
use aligndata_models::llm::{CachedLlm, Llm, LocalConfig, LocalLlm, OpenAiConfig, OpenAiLlm};
use aligndata_models::registry;
use aligndata_stages::label::{
    LabelConfig, LabelModel, LabelSource, Labeller, PrototypeConfig, TrainConfig,
    examples_from_dataset, examples_from_jsonl, label, taxonomy_prototypes, train_model,
};

use crate::cli::{GenerateBackend, LabelArgs, LabelCommand, LabelTrainArgs};
use crate::commands::ingest::dataset_format;
use crate::ui::{Outcome, Ui};

pub fn run(args: LabelArgs, ui: &Ui) -> Result<Outcome> {
    if let Some(LabelCommand::Train(train)) = args.command {
        return run_train(*train, ui);
    }
    let (Some(dataset), Some(taxonomy_path), Some(out)) = (
        args.dataset.clone(),
        args.taxonomy.clone(),
        args.out.clone(),
    ) else {
        bail!(
            "label needs DATASET, --taxonomy and --out\nhint: aligndata label DATASET --taxonomy FILE --out DIR"
        );
    };
    let taxonomy = Taxonomy::load(&taxonomy_path)?;
    let method = match (args.method.as_deref(), &args.model) {
        (None, Some(_)) | (Some("trained"), Some(_)) => "trained",
        (None, None) | (Some("prototype"), None) => "prototype",
        (Some("llm"), None) => "llm",
        (Some("trained"), None) => bail!(
            "--method trained needs --model MODEL.json\nhint: make one with `aligndata label train`"
        ),
        (Some(other @ ("prototype" | "llm")), Some(_)) => {
            bail!("--model is for --method trained, not {other}")
        }
        (Some(other), _) => bail!("unknown --method `{other}`\nhint: prototype, trained or llm"),
    };
    let note = |m: &str| ui.note(&format!("  {m}"));
    let mut model: Option<LabelModel> = None;
    let mut embedder: Option<Box<dyn Embedder>> = None;
    let mut llm: Option<Box<dyn Llm>> = None;
    match method {
        "trained" => {
            let path = args.model.as_ref().context("internal: no model path")?;
            let m = LabelModel::load(path)?;
            m.check_taxonomy(&taxonomy)?;
            if m.needs_embedder() {
                let kind: EmbedderKind = args.embedder.as_deref().unwrap_or(&m.embedder).parse()?;
                embedder = Some(load_embedder(kind, ui.offline, &note)?);
            }
            model = Some(m);
        }
        "prototype" => {
            let kind: EmbedderKind = args.embedder.as_deref().unwrap_or("minilm").parse()?;
            embedder = Some(load_embedder(kind, ui.offline, &note)?);
        }
        _ => llm = Some(load_llm(&args, ui)?),
    }
    let labeller = match method {
        "trained" => Labeller::Trained(model.as_ref().context("internal: no model")?),
        "prototype" => {
            let config = PrototypeConfig {
                mode: args.prototype.parse()?,
                temperature: args.temperature,
                min_similarity: args.min_similarity,
                margin: args.margin,
            };
            let e = embedder.as_deref().context("internal: no embedder")?;
            Labeller::Prototype(taxonomy_prototypes(&taxonomy, e, &config)?)
        }
        _ => Labeller::Llm(llm.as_deref().context("internal: no llm")?),
    };

    let sharded = super::shard::narrow(std::slice::from_ref(&dataset), args.shard, &out)?;
    let dataset = sharded.paths[0].clone();
    let total = aligndata_dataset::Dataset::open(&dataset)
        .map(|d| d.manifest.counts.total)
        .ok();
    let bar = ui.bar(total, "label");
    let summary = label(
        &dataset,
        &out,
        &taxonomy,
        &labeller,
        embedder.as_deref(),
        &LabelConfig {
            format: dataset_format(args.format),
        },
        &|n| bar.set_position(n),
    );
    bar.finish_and_clear();
    let summary = summary?;

    let mut human = vec![format!(
        "label: {} records written to {} (method {}{})",
        summary.records,
        summary.out.display(),
        summary.method,
        summary
            .embedder
            .as_ref()
            .map(|e| format!(", embedder {e}"))
            .unwrap_or_default()
    )];
    for (dim, d) in &summary.dimensions {
        let cutoff = summary
            .thresholds
            .get(dim)
            .map(|t| format!(", cut-off {t:.3}"))
            .unwrap_or_default();
        human.push(format!(
            "  {dim}: none {} ({:.1}%){cutoff}",
            d.none,
            100.0 * d.none_share
        ));
        let mut values: Vec<_> = d.values.iter().collect();
        values.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (v, n) in values {
            human.push(format!("    {v:<32} {n}"));
        }
    }
    if summary.parse_failures > 0 {
        human.push(format!(
            "  {} LLM answers failed the parse check and gave no labels (small models often do; try a capable server)",
            summary.parse_failures
        ));
    }
    if let Some(a) = summary.intended_agreement {
        human.push(format!(
            "  agreement with the generator's intended cell: {:.1}% of (record, dimension) pairs over {} synthetic records",
            100.0 * a,
            summary.intended_checked
        ));
    }
    let produced = summary.records > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "label": summary }));
    outcome.produced = produced;
    Ok(outcome)
}

fn load_llm(args: &LabelArgs, ui: &Ui) -> Result<Box<dyn Llm>> {
    Ok(match args.backend {
        GenerateBackend::Template => {
            bail!("--backend template has no model to label with\nhint: --backend local or openai")
        }
        GenerateBackend::Local => {
            let name = args.model_name.as_deref().unwrap_or("smollm2-135m");
            let path = registry::resolve(name, ui.offline, &|m: &str| ui.note(&format!("  {m}")))?;
            ui.note("  note: the local 135M model rarely follows the answer format; expect parse failures");
            Box::new(CachedLlm::new(
                LocalLlm::load(&path, LocalConfig::default())?,
                &default_cache_dir(),
            )?)
        }
        GenerateBackend::Openai => {
            let Some(model) = args.model_name.clone() else {
                bail!("--backend openai needs --model-name (the served model's name)");
            };
            let cfg = OpenAiConfig {
                base_url: args.base_url.clone(),
                model,
                api_key_env: Some(args.api_key_env.clone()),
                ..OpenAiConfig::default()
            };
            Box::new(CachedLlm::new(OpenAiLlm::new(cfg)?, &default_cache_dir())?)
        }
    })
}

fn run_train(args: LabelTrainArgs, ui: &Ui) -> Result<Outcome> {
    let taxonomy = Taxonomy::load(&args.taxonomy)?;
    let mapping: Option<BTreeMap<String, Vec<String>>> = match &args.label_map {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("could not read the label map {}", path.display()))?;
            let name = path.display().to_string();
            let map = if name.ends_with(".json") {
                serde_json::from_str(&text).with_context(|| {
                    format!("{name}: expected a map of label → [dimension=value, …]")
                })?
            } else {
                let raw: BTreeMap<String, OneOrMany> =
                    aligndata_core::yaml::from_yaml_str(&text, &name).map_err(|e| {
                        anyhow::anyhow!(
                            "{e}\nhint: a map of label → dimension=value or a list of them"
                        )
                    })?;
                raw.into_iter().map(|(k, v)| (k, v.into_vec())).collect()
            };
            Some(map)
        }
    };
    let (examples, trained_on, unknown) = if args.input.is_dir() {
        if args.label_field.is_some() {
            bail!(
                "--label-field is for JSONL files; {} is a dataset directory\nhint: use --from intended|labels",
                args.input.display()
            );
        }
        let source = match args.from.as_str() {
            "intended" => LabelSource::Intended,
            "labels" => LabelSource::Labels(None),
            other => match other.strip_prefix("labels:") {
                Some(m) => LabelSource::Labels(Some(m.to_string())),
                None => bail!("unknown --from `{other}`\nhint: intended, labels or labels:METHOD"),
            },
        };
        let examples = examples_from_dataset(&args.input, &source)?;
        (
            examples,
            format!("{} ({})", args.input.display(), args.from),
            BTreeMap::new(),
        )
    } else {
        let Some(field) = args.label_field.as_deref() else {
            bail!(
                "{} is a file: say which field holds the labels with --label-field\nhint: or give a dataset directory",
                args.input.display()
            );
        };
        let (examples, unknown) = examples_from_jsonl(
            &args.input,
            &taxonomy,
            &args.text_field,
            field,
            mapping.as_ref(),
        )?;
        (
            examples,
            format!("{} (field {field})", args.input.display()),
            unknown,
        )
    };
    if examples.is_empty() {
        bail!(
            "no labelled examples found in {}\nhint: synthetic datasets carry `intended`; other files need --label-field (and --label-map when the labels are not taxonomy value ids)",
            args.input.display()
        );
    }
    let (with_tfidf, with_embedding) = match args.features.as_str() {
        "tfidf+embedding" | "embedding+tfidf" => (true, true),
        "tfidf" => (true, false),
        "embedding" => (false, true),
        other => bail!("unknown --features `{other}`\nhint: tfidf+embedding, tfidf or embedding"),
    };
    let mut config = if with_tfidf {
        TrainConfig::shipped()
    } else {
        TrainConfig::default()
    };
    if let Some(t) = config.tfidf.as_mut() {
        t.min_df = args.min_df;
        t.char_ngrams = (args.char_ngrams >= 2).then_some([2, args.char_ngrams]);
    }
    config.epochs = args.epochs.unwrap_or(config.epochs);
    config.l2 = args.l2.unwrap_or(config.l2);
    config.holdout = args.holdout;
    config.folds = args.folds;
    config.seed = args.seed;
    let kind: EmbedderKind = args.embedder.parse()?;
    let embedder = if with_embedding {
        Some(load_embedder(kind, ui.offline, &|m: &str| {
            ui.note(&format!("  {m}"))
        })?)
    } else {
        None
    };
    let kind_name = kind.to_string();
    let bar = ui.bar(Some(examples.len() as u64), "embed");
    let result = train_model(
        &taxonomy,
        embedder.as_deref().map(|e| (e, kind_name.as_str())),
        &examples,
        &trained_on,
        &config,
        &|n| bar.set_position(n),
    );
    bar.finish_and_clear();
    let (model, summary) = result?;
    model.save(&args.out)?;

    let size = std::fs::metadata(&args.out).map_or(0, |m| m.len());
    let mut human = vec![format!(
        "label train: {} examples, model written to {} ({:.1} MB; features: {}{})",
        summary.examples,
        args.out.display(),
        size as f64 / 1e6,
        model
            .tfidf
            .as_ref()
            .map(|t| match t.char_terms.len() {
                0 => format!("{} TF-IDF terms", t.len()),
                c => format!("{} TF-IDF terms ({c} character n-grams)", t.len()),
            })
            .unwrap_or_default(),
        if model.needs_embedder() {
            format!(
                "{}{}",
                if model.tfidf.is_some() { " + " } else { "" },
                model.embedder_name
            )
        } else {
            String::new()
        }
    )];
    for (dim, d) in &summary.dimensions {
        human.push(format!("  {dim}: {} labelled", d.labelled));
        for (v, (n, f1)) in &d.values {
            let f1 = f1
                .map(|f| format!("held-out F1 {f:.2}"))
                .unwrap_or_else(|| "no held-out positives".into());
            human.push(format!("    {v:<32} {n:>6}  {f1}"));
        }
    }
    for (dim, why) in &summary.skipped {
        human.push(format!("  {dim}: skipped, {why}"));
    }
    if !unknown.is_empty() {
        let list: Vec<String> = unknown
            .iter()
            .take(10)
            .map(|(l, n)| format!("{l} ×{n}"))
            .collect();
        human.push(format!(
            "  labels not mapped to the taxonomy (ignored): {}",
            list.join(", ")
        ));
    }
    Ok(Outcome::new(
        human,
        json!({ "ok": true, "label_train": summary, "model": args.out, "unmapped_labels": unknown }),
    ))
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}
