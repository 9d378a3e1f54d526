//! `aligndata respond`: flags → a policy, resources, a safety detector and a (cached) model →
//! the respond stage; then the summary: candidates, crisis inputs by cue kind, failures.

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_models::embed::{Embedder, EmbedderKind, load_embedder};
use aligndata_models::llm::cache::default_cache_dir;
use aligndata_models::llm::{CachedLlm, Llm, LocalConfig, LocalLlm, OpenAiConfig, OpenAiLlm};
use aligndata_models::registry;
use aligndata_stages::respond::{DEFAULT_POLICY, Policy, RespondConfig, respond};
use aligndata_stages::safety::{ClassifierCheck, DEFAULT_RESOURCES, Detector, Resources};

use crate::cli::{LlmBackend, RespondArgs};
use crate::commands::ingest::dataset_format;
use crate::ui::{Outcome, Ui};

/// Loads the model a command asked for, behind the completion cache unless `no_cache`.
pub fn load_llm(
    backend: LlmBackend,
    model: Option<&str>,
    base_url: &str,
    api_key_env: &str,
    no_cache: bool,
    ui: &Ui,
) -> Result<Box<dyn Llm>> {
    let llm: Box<dyn Llm> = match backend {
        LlmBackend::Local => {
            let name = model.unwrap_or("smollm2-135m");
            let path = registry::resolve(name, ui.offline, &|m: &str| ui.note(&format!("  {m}")))?;
            let llm = LocalLlm::load(&path, LocalConfig::default())?;
            if no_cache {
                Box::new(llm)
            } else {
                Box::new(CachedLlm::new(llm, &default_cache_dir())?)
            }
        }
        LlmBackend::Openai => {
            let Some(model) = model else {
                bail!("--backend openai needs --model (the served model's name)");
            };
            let cfg = OpenAiConfig {
                base_url: base_url.to_string(),
                model: model.to_string(),
                api_key_env: Some(api_key_env.to_string()),
                ..OpenAiConfig::default()
            };
            let llm = OpenAiLlm::new(cfg)?;
            if no_cache {
                Box::new(llm)
            } else {
                Box::new(CachedLlm::new(llm, &default_cache_dir())?)
            }
        }
    };
    Ok(llm)
}

/// The resources file given, else the built-in copy.
pub fn load_resources(path: Option<&std::path::Path>) -> Result<Resources> {
    match path {
        Some(p) => Resources::load(p),
        None => Resources::parse(DEFAULT_RESOURCES, "built-in resources.yaml"),
    }
}

pub fn run(args: RespondArgs, ui: &Ui) -> Result<Outcome> {
    if args.n == 0 {
        bail!("--n must be at least 1");
    }
    let mut policy = match &args.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::parse(DEFAULT_POLICY, "built-in policy.yaml")?,
    };
    if let Some(m) = args.max_tokens {
        policy.max_tokens = m.max(1);
    }
    let resources = load_resources(args.resources.as_deref())?;
    if let Some(l) = &args.locale
        && !resources.locales.keys().any(|k| k.eq_ignore_ascii_case(l))
    {
        let known: Vec<&str> = resources.locales.keys().map(String::as_str).collect();
        ui.note(&format!(
            "note: no resources for locale `{l}`; using `{}` (known: {})",
            resources.fallback,
            known.join(", ")
        ));
    }
    let embedder = match args.safety_embedder.trim() {
        "none" | "" => None,
        kind => {
            let kind: EmbedderKind = kind.parse()?;
            let progress = |m: &str| ui.note(&format!("  {m}"));
            // MiniLM gets the shipped crisis adapter merged in: the encoder the shipped
            // classifier was fine-tuned with (see `safety`).
            let embedder: Box<dyn Embedder> = if kind == EmbedderKind::MiniLm {
                Box::new(
                    aligndata_stages::safety::crisis_embedder(ui.offline, &progress)
                        .context("loading the safety embedder")?,
                )
            } else {
                load_embedder(kind, ui.offline, &progress).context("loading the safety embedder")?
            };
            Some(embedder)
        }
    };
    let detector = match &embedder {
        Some(e) => {
            let mut check =
                ClassifierCheck::new(e.as_ref()).context("loading the crisis classifier")?;
            if let Some(t) = args.safety_threshold {
                if !(0.0..=1.0).contains(&t) {
                    bail!("--safety-threshold must be a probability in [0, 1], got {t}");
                }
                check.model.threshold = t;
                check.model.weak_threshold = check.model.weak_threshold.min(t);
                check.model.strong_threshold = check.model.strong_threshold.min(t);
            }
            Detector::with_classifier(check)
        }
        None => {
            if args.safety_threshold.is_some() {
                bail!("--safety-threshold needs a classifier; drop --safety-embedder none");
            }
            Detector::default()
        }
    };
    let llm = load_llm(
        args.backend,
        args.model.as_deref(),
        &args.base_url,
        &args.api_key_env,
        args.no_cache,
        ui,
    )?;
    let config = RespondConfig {
        n: args.n,
        seed: args.seed,
        locale: args.locale.clone(),
        batch: args.batch.max(1),
        format: dataset_format(args.out.format),
        echo: json!({
            "policy": args.policy, "resources": args.resources, "backend": format!("{:?}", args.backend).to_lowercase(),
            "model": args.model, "safety_embedder": args.safety_embedder,
            "safety_threshold": detector.classifier().map(|c| c.model.threshold),
            // What a reviewer needs to audit a crisis decision: the classifier's encoder and
            // all three thresholds (solo, confirming a weak cue, cancelling a strong one).
            "safety_classifier": detector.classifier().map(|c| json!({
                "embedder": c.model.embedder, "threshold": c.model.threshold,
                "weak_threshold": c.model.weak_threshold,
                "strong_threshold": c.model.strong_threshold,
            })),
        }),
    };
    let total = aligndata_dataset::Dataset::open(&args.dataset)
        .map(|d| d.manifest.counts.total)
        .unwrap_or(0);
    let bar = ui.bar(Some(total.max(1)), "respond");
    let summary = respond(
        &args.dataset,
        &args.out.out,
        &policy,
        &resources,
        &detector,
        llm.as_ref(),
        &config,
        &|n| bar.set_position(n),
    );
    bar.finish_and_clear();
    let s = summary?;
    let stats = llm.stats();
    let mut human = vec![format!(
        "respond: {} records → {}; {} answered ({} model candidates, policy {}, model {})",
        s.records,
        s.out.display(),
        s.responded,
        s.model_candidates,
        s.policy,
        s.model
    )];
    let kinds: Vec<String> = s
        .crisis_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    human.push(format!(
        "  crisis inputs: {} answered with the crisis response ({}), {} more among set-aside records",
        s.crisis,
        if kinds.is_empty() { "none".to_string() } else { kinds.join(", ") },
        s.crisis_set_aside
    ));
    if !s.crisis_by_locale.is_empty() {
        let locales: Vec<String> = s
            .crisis_by_locale
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        human.push(format!(
            "  crisis resources by locale: {}",
            locales.join(", ")
        ));
    }
    if s.failed_candidates > 0 {
        human.push(format!(
            "  failed candidates: {} ({} records flagged no_response)",
            s.failed_candidates, s.no_response
        ));
    }
    human.push(format!("  model: {stats}"));
    let produced = s.responded > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "respond": s, "llm": stats }));
    outcome.produced = produced;
    Ok(outcome)
}
