//! `aligndata generate`: flags → a plan, a backend, persona facets and templates → the
//! generate stage; then the table: quotas met, rejections by reason, agreement, diversity.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_models::embed::{EmbedderKind, load_embedder};
use aligndata_models::llm::cache::default_cache_dir;
use aligndata_models::llm::{CachedLlm, Llm, LocalConfig, LocalLlm, OpenAiConfig, OpenAiLlm};
use aligndata_models::registry;
use aligndata_stages::generate::checkpoint::work_dir;
use aligndata_stages::generate::persona::PersonaSpace;
use aligndata_stages::generate::prompt::{DEFAULT_PERSONA, PromptKind, PromptTemplate};
use aligndata_stages::generate::{Backend, GenerateConfig, generate};
use aligndata_stages::label::{
    LabelChecker, LabelModel, Labeller, PrototypeConfig, taxonomy_prototypes,
};
use aligndata_stages::plan::{Plan, PlanConfig, build_plan};

use crate::cli::{GenerateArgs, GenerateBackend, PromptStyle};
use crate::commands::ingest::dataset_format;
use crate::ui::{Outcome, Ui};

fn templates_dir(args: &GenerateArgs) -> Option<PathBuf> {
    if let Some(d) = &args.templates {
        return Some(d.clone());
    }
    let beside = args
        .taxonomy
        .parent()
        .unwrap_or(Path::new("."))
        .join("templates");
    beside.is_dir().then_some(beside)
}

fn load_llm(args: &GenerateArgs, ui: &Ui) -> Result<Box<dyn Llm>> {
    let llm: Box<dyn Llm> = match args.backend {
        GenerateBackend::Template => bail!("internal: the template backend has no model"),
        GenerateBackend::Local => {
            let name = args.model.as_deref().unwrap_or("smollm2-135m");
            let path = registry::resolve(name, ui.offline, &|m: &str| ui.note(&format!("  {m}")))?;
            // 32 sequences a step: +13% generation throughput over the default 16 on 2 cores
            // (`bench_llm`, BENCHMARKS.md), and a generate batch is 64 attempts anyway.
            let config = LocalConfig {
                max_batch: 32,
                ..LocalConfig::default()
            };
            let llm = LocalLlm::load(&path, config)?;
            if args.no_cache {
                Box::new(llm)
            } else {
                Box::new(CachedLlm::new(llm, &default_cache_dir())?)
            }
        }
        GenerateBackend::Openai => {
            let Some(model) = args.model.clone() else {
                bail!("--backend openai needs --model (the served model's name)");
            };
            let cfg = OpenAiConfig {
                base_url: args.base_url.clone(),
                model,
                api_key_env: Some(args.api_key_env.clone()),
                ..OpenAiConfig::default()
            };
            let llm = OpenAiLlm::new(cfg)?;
            if args.no_cache {
                Box::new(llm)
            } else {
                Box::new(CachedLlm::new(llm, &default_cache_dir())?)
            }
        }
    };
    Ok(llm)
}

pub fn run(args: GenerateArgs, ui: &Ui) -> Result<Outcome> {
    let taxonomy = Taxonomy::load(&args.taxonomy)?;
    let (plan, plan_parent) = match (&args.plan, args.count) {
        (Some(path), _) => (Plan::load(path)?, Some(path.display().to_string())),
        (None, Some(count)) => {
            let cfg = PlanConfig {
                count,
                proportional: args.proportional,
                explicit: Vec::new(),
                seed: args.seed,
            };
            (build_plan(&taxonomy, &cfg)?, None)
        }
        (None, None) => bail!(
            "say how much to generate: --count N or --plan plan.json\nhint: `aligndata plan` writes a plan"
        ),
    };
    let cells = plan.resolve(&taxonomy)?;
    let dir = templates_dir(&args);
    let personas = match dir
        .as_ref()
        .map(|d| d.join("persona.yaml"))
        .filter(|p| p.exists())
    {
        Some(p) => PersonaSpace::load(&p)?,
        None => PersonaSpace::parse(DEFAULT_PERSONA, "built-in persona.yaml")?,
    };
    let embedder = match args.embedder.trim() {
        "none" | "" => None,
        other => {
            let kind: EmbedderKind = other.parse()?;
            Some(
                load_embedder(kind, ui.offline, &|m: &str| ui.note(&format!("  {m}")))
                    .context("loading the embedder for diversity figures")?,
            )
        }
    };
    let llm = match args.backend {
        GenerateBackend::Template => None,
        _ => Some(load_llm(&args, ui)?),
    };
    let kind = match (args.prompt, args.backend) {
        (Some(PromptStyle::Continuation), _) => PromptKind::Continuation,
        (Some(PromptStyle::Instruction), _) => PromptKind::Instruction,
        (None, GenerateBackend::Openai) => PromptKind::Instruction,
        (None, _) => PromptKind::Continuation,
    };
    let backend = match &llm {
        None => Backend::Template,
        Some(l) => Backend::Model {
            llm: l.as_ref(),
            template: PromptTemplate::load(dir.as_deref(), kind)?,
        },
    };
    if embedder.is_none() && (args.semantic_threshold.is_some() || args.min_novelty.is_some()) {
        bail!(
            "--semantic-threshold and --min-novelty compare embeddings, but --embedder is none\nhint: pass --embedder hashed, static or minilm"
        );
    }
    if let Some(c) = args.semantic_threshold
        && !(0.0..=1.0).contains(&c)
    {
        bail!("--semantic-threshold {c}: expected a cosine between 0 and 1 (e.g. 0.9)");
    }
    if let Some(x) = args.min_novelty
        && !(0.0..=1.0).contains(&x)
    {
        bail!("--min-novelty {x}: expected a distance between 0 and 1 (e.g. 0.15)");
    }
    let mut config = GenerateConfig {
        seed: args.seed,
        attempts_per_input: args.attempts,
        temperature: args.temperature,
        top_p: args.top_p,
        max_tokens: args.max_tokens,
        fewshot: args.fewshot,
        near_threshold: args.near_threshold,
        batch: args.batch,
        against: args.against.clone(),
        semantic_threshold: args.semantic_threshold,
        min_novelty: args.min_novelty,
        checkpoint: Some(work_dir(&args.out.out)),
        format: dataset_format(args.out.format),
        parents: plan_parent.into_iter().collect(),
        config_echo: json!({
            "taxonomy": args.taxonomy, "backend": format!("{:?}", args.backend).to_lowercase(),
            "model": args.model, "seed": args.seed, "attempts": args.attempts,
            "temperature": args.temperature, "top_p": args.top_p, "max_tokens": args.max_tokens,
            "fewshot": args.fewshot,
            "near_threshold": args.near_threshold, "plan_total": plan.total,
            "against": args.against, "semantic_threshold": args.semantic_threshold,
            "min_novelty": args.min_novelty, "batch": args.batch,
        }),
        ..GenerateConfig::default()
    };
    // The labeller as the cell check (loaded before the bar so its notes read cleanly).
    let check_embedder;
    let check_model;
    let checker = match args.check.trim() {
        "none" | "" => None,
        check => {
            check_embedder = load_embedder(EmbedderKind::Static, ui.offline, &|m: &str| {
                ui.note(&format!("  {m}"))
            })
            .context("loading the embedder for the cell check")?;
            let labeller = if check == "prototype" {
                Labeller::Prototype(taxonomy_prototypes(
                    &taxonomy,
                    check_embedder.as_ref(),
                    &PrototypeConfig::default(),
                )?)
            } else {
                check_model = LabelModel::load(Path::new(check))
                    .with_context(|| format!("--check {check}: expected `prototype`, `none` or a model from `aligndata label train`"))?;
                Labeller::Trained(&check_model)
            };
            Some(LabelChecker {
                name: format!("{}/{}", labeller.method(), check_embedder.name()),
                labeller,
                taxonomy: &taxonomy,
                embedder: Some(check_embedder.as_ref()),
            })
        }
    };
    config.reject_disagreeing = args.reject_off_cell;
    let bar = ui.bar(Some(plan.total.max(1)), "generate");
    let summary = generate(
        &taxonomy,
        &cells,
        &personas,
        &backend,
        checker
            .as_ref()
            .map(|c| c as &dyn aligndata_stages::generate::CellChecker),
        embedder.as_deref(),
        &config,
        &args.out.out,
        &|done, _| bar.set_position(done),
    );
    bar.finish_and_clear();
    let s = summary?;

    let mut human = vec![format!(
        "generate: {} of {} planned inputs accepted ({} attempts, {} records) → {}",
        s.accepted,
        s.planned,
        s.attempts,
        s.records,
        s.out.display()
    )];
    if s.resumed_attempts > 0 {
        human.push(format!(
            "  resumed: {} accepted inputs ({} attempts) kept from the interrupted run; {} attempts new",
            s.resumed_accepted,
            s.resumed_attempts,
            s.attempts - s.resumed_attempts
        ));
    }
    if s.checkpoint_discarded {
        human.push("  note: a resume log from other settings was found and discarded".to_string());
    }
    let tm = &s.timings;
    human.push(format!(
        "  backend {}{}; {:.1}s total, {:.1}s ({:.0}%) in the backend; prompts {:.1}s, parse+MinHash {:.1}s, embeddings {:.1}s, labeller {:.1}s, writing {:.1}s, diversity {:.1}s",
        s.backend,
        s.template
            .as_deref()
            .map(|t| format!(" with {t}"))
            .unwrap_or_default(),
        tm.total,
        tm.backend,
        tm.backend_share * 100.0,
        tm.prepare,
        tm.judge,
        tm.embed,
        tm.check,
        tm.write,
        tm.diversity,
    ));
    if !args.against.is_empty() {
        human.push(format!(
            "  against: {} kept records of {}",
            s.against_records,
            args.against
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(n) = &s.novelty {
        human.push(format!(
            "  novelty (1 − cosine to nearest known): mean {:.3}, min {:.3}, p10 {:.3}, median {:.3}, p90 {:.3}, max {:.3} over {} inputs",
            n.mean, n.min, n.p10, n.p50, n.p90, n.max, n.scored
        ));
    }
    let met = plan.cells.len() - s.short.len();
    human.push(format!("  quotas met: {met}/{} cells", plan.cells.len()));
    if !s.rejected.is_empty() {
        let r: Vec<String> = s.rejected.iter().map(|(k, n)| format!("{k} {n}")).collect();
        human.push(format!("  rejected: {}", r.join(", ")));
    }
    if !s.parse_fixes.is_empty() {
        let r: Vec<String> = s
            .parse_fixes
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        human.push(format!("  output repaired: {}", r.join(", ")));
    }
    match &s.agreement {
        Some(a) => {
            for (dim, ag) in a {
                human.push(format!(
                    "  agreement {dim}: {:.2} ({}/{})",
                    ag.rate, ag.agree, ag.checked
                ));
            }
        }
        None => human.push("  agreement: not measured (--check none)".to_string()),
    }
    human.push(format!(
        "  diversity overall:  {}",
        s.diversity.overall.line()
    ));
    if s.diversity.cells_measured == 0 {
        human.push("  diversity per cell: n/a (no cell has two accepted inputs)".to_string());
    } else {
        human.push(format!(
            "  diversity per cell: {} (mean over {} cells)",
            s.diversity.per_cell_mean.line(),
            s.diversity.cells_measured
        ));
    }
    for sh in s.short.iter().take(10) {
        human.push(format!(
            "  short: {} {}/{} after {} attempts (mostly {})",
            sh.cell, sh.accepted, sh.quota, sh.attempts, sh.main_reason
        ));
    }
    if s.short.len() > 10 {
        human.push(format!(
            "  … {} more cells short (see --json)",
            s.short.len() - 10
        ));
    }
    let produced = s.accepted > 0;
    let mut outcome = Outcome::new(human, json!({ "ok": true, "generate": s }));
    outcome.produced = produced;
    Ok(outcome)
}
