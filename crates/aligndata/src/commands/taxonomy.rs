//! `aligndata taxonomy check|show`.

use anyhow::Result;
use serde_json::json;

use aligndata_core::Taxonomy;

use crate::cli::TaxonomyCommand;
use crate::ui::{Outcome, Ui};

pub fn run(cmd: TaxonomyCommand, _ui: &Ui) -> Result<Outcome> {
    match cmd {
        TaxonomyCommand::Check { file } => {
            let taxonomy = Taxonomy::load(&file)?;
            let human = vec![format!(
                "{}: ok — {} dimensions, {} values, {} cells ({} after exclusions)",
                file.display(),
                taxonomy.dimensions.len(),
                taxonomy
                    .dimensions
                    .iter()
                    .map(|d| d.values.len())
                    .sum::<usize>(),
                taxonomy.cell_count_total(),
                taxonomy.allowed_cell_count(),
            )];
            let json = json!({
                "ok": true,
                "file": file,
                "dimensions": taxonomy.dimensions.len(),
                "cells": taxonomy.cell_count_total(),
                "allowed_cells": taxonomy.allowed_cell_count(),
            });
            Ok(Outcome::new(human, json))
        }
        TaxonomyCommand::Show { file } => {
            let taxonomy = Taxonomy::load(&file)?;
            let human = taxonomy.describe().lines().map(str::to_string).collect();
            let mut json = serde_json::to_value(&taxonomy)?;
            if let serde_json::Value::Object(map) = &mut json {
                map.insert("cells".into(), json!(taxonomy.cell_count_total()));
                map.insert("allowed_cells".into(), json!(taxonomy.allowed_cell_count()));
            }
            Ok(Outcome::new(human, json))
        }
    }
}
