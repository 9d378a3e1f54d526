//! The dataset card (`README.md` beside the files): what a reviewer needs before training on
//! the data — sources and mix, counts per cell, models, every filter with its count, licenses
//! and known limits (story 5). Its YAML header declares one Hugging Face `datasets` config per
//! format, so `load_dataset(dir, "trl-preference")` finds the right files.

use std::fmt::Write;

use super::{ExportConfig, ExportSummary, SPLIT_NAMES};

/// Cells listed in the card (largest first); the rest are summed in one line.
pub const TOP_CELLS: usize = 25;

fn pct(n: u64, total: u64) -> String {
    if total == 0 {
        "0%".to_string()
    } else {
        format!("{:.1}%", 100.0 * n as f64 / total as f64)
    }
}

fn yaml_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

/// Renders the card.
pub fn render(summary: &ExportSummary, config: &ExportConfig) -> String {
    let mut s = String::new();
    // YAML header (Hugging Face dataset card metadata).
    s.push_str("---\n");
    if let Some(license) = &config.license {
        let _ = writeln!(s, "license: {}", yaml_str(license));
    }
    s.push_str("task_categories:\n- text-generation\ntags:\n- aligndata\n- supportive-dialogue\nconfigs:\n");
    for f in &summary.formats {
        let _ = writeln!(s, "- config_name: {}\n  data_files:", f.format);
        for split in SPLIT_NAMES {
            let _ = writeln!(
                s,
                "  - split: {split}\n    path: {}/{split}.parquet",
                f.format
            );
        }
    }
    s.push_str("---\n\n");

    let _ = writeln!(s, "# {}\n", config.name);
    let _ = writeln!(
        s,
        "Training data for a supportive chat agent, written by `aligndata export`: {} of {} input records \
         exported, split into train / validation / test ({} / {} / {}).\n",
        summary.exported,
        summary.records,
        summary.splits.get("train").copied().unwrap_or(0),
        summary.splits.get("validation").copied().unwrap_or(0),
        summary.splits.get("test").copied().unwrap_or(0),
    );

    s.push_str("## Files\n\nEach format has `train`, `validation` and `test` splits as JSONL and Parquet.\n\n");
    s.push_str(
        "| format | for | fields | train | validation | test |\n|---|---|---|---:|---:|---:|\n",
    );
    for f in &summary.formats {
        let rows = |k: &str| f.rows.get(k).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "| `{}/` | {} | {} | {} | {} | {} |",
            f.format,
            f.description,
            f.fields
                .iter()
                .map(|x| format!("`{x}`"))
                .collect::<Vec<_>>()
                .join(", "),
            rows("train"),
            rows("validation"),
            rows("test")
        );
    }
    s.push_str(
        "\n`splits.jsonl` maps every exported record id to its split and cell; `export.json` holds every \
         figure on this card.\n\n",
    );
    if let Some(system) = &config.system_prompt {
        let _ = writeln!(
            s,
            "Every conversation starts with this system message:\n\n> {}\n",
            system.replace('\n', "\n> ")
        );
    }

    s.push_str("## Sources and mix\n\n| source | records | share |\n|---|---:|---:|\n");
    for (source, n) in &summary.by_source {
        let _ = writeln!(s, "| {source} | {n} | {} |", pct(*n, summary.exported));
    }
    s.push_str("\n| origin (file or generator) | records |\n|---|---:|\n");
    for (origin, n) in &summary.by_origin {
        let _ = writeln!(s, "| {} | {n} |", origin.replace('|', "\\|"));
    }

    let _ = writeln!(
        s,
        "\n## Counts per cell\n\nA cell is the top label per dimension ({}), or the generator's intended value \
         where no label was found (`?` when neither). {} cells in all; the largest:\n",
        if summary.dimensions.is_empty() {
            "none found".to_string()
        } else {
            summary.dimensions.join(" × ")
        },
        summary.cells.len()
    );
    s.push_str("| cell | train | validation | test | total |\n|---|---:|---:|---:|---:|\n");
    let mut cells: Vec<(&String, &[u64; 3])> = summary.cells.iter().collect();
    cells.sort_by(|a, b| {
        b.1.iter()
            .sum::<u64>()
            .cmp(&a.1.iter().sum::<u64>())
            .then(a.0.cmp(b.0))
    });
    for (cell, n) in cells.iter().take(TOP_CELLS) {
        let _ = writeln!(
            s,
            "| {cell} | {} | {} | {} | {} |",
            n[0],
            n[1],
            n[2],
            n.iter().sum::<u64>()
        );
    }
    if cells.len() > TOP_CELLS {
        let rest: u64 = cells
            .iter()
            .skip(TOP_CELLS)
            .map(|(_, n)| n.iter().sum::<u64>())
            .sum();
        let _ = writeln!(
            s,
            "| … {} more cells | | | | {rest} |",
            cells.len() - TOP_CELLS
        );
    }

    s.push_str("\n## Models used\n\n");
    if summary.models.is_empty() {
        s.push_str("No model is named in the records' provenance or responses.\n");
    } else {
        s.push_str("| role: model | records |\n|---|---:|\n");
        for (model, n) in &summary.models {
            let _ = writeln!(s, "| {model} | {n} |");
        }
    }

    s.push_str("\n## Filters and what they removed\n\n");
    s.push_str("Set aside by earlier stages (flag counts from each input's manifest; nothing is dropped silently, \
                flagged records stay in the input datasets with their reason):\n\n");
    s.push_str("| input | stage | records | flag | set aside |\n|---|---|---:|---|---:|\n");
    for input in &summary.inputs {
        if input.by_flag.is_empty() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | (none) | 0 |",
                input.dataset, input.stage, input.records
            );
        }
        for (flag, n) in &input.by_flag {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {flag} | {n} |",
                input.dataset, input.stage, input.records
            );
        }
        if input.quarantined > 0 {
            let _ = writeln!(
                s,
                "| {} | {} | {} | unreadable rows (quarantine) | {} |",
                input.dataset, input.stage, input.records, input.quarantined
            );
        }
    }
    let _ = writeln!(
        s,
        "\nLeft out of this export ({} flagged records in all):\n",
        summary.excluded_flagged
    );
    s.push_str("| reason | records |\n|---|---:|\n");
    if summary.excluded.is_empty() {
        s.push_str("| (none) | 0 |\n");
    }
    for (reason, n) in &summary.excluded {
        let why = if reason == "no_response" {
            "no_response (kept, but no response to train on)"
        } else {
            reason
        };
        let _ = writeln!(s, "| {why} | {n} |");
    }
    if !config.keep_flags.is_empty() {
        let _ = writeln!(
            s,
            "\nRecords flagged only with {} were kept on purpose.",
            config.keep_flags.join(", ")
        );
    }
    let _ = writeln!(
        s,
        "\nSplits keep near-duplicates together: {} groups ({} records) of exact or near duplicates \
         (MinHash Jaccard ≥ {}) each sit in a single split.",
        summary.duplicate_groups, summary.grouped_records, config.near_threshold
    );

    s.push_str("\n## Licenses\n\n");
    let _ = writeln!(
        s,
        "This dataset: {}.\n",
        config
            .license
            .as_deref()
            .unwrap_or("not stated (pass `--license`)")
    );
    s.push_str("| source | license |\n|---|---|\n");
    for (origin, license) in &summary.licenses {
        let _ = writeln!(s, "| {} | {license} |", origin.replace('|', "\\|"));
    }
    if summary.licenses.values().any(|l| l == "unknown") {
        s.push_str("\nSources marked `unknown` need their terms checked before the data is shared \
                    (`--source-license PATTERN=LICENSE`). Synthetic text and responses are also subject to \
                    the terms of the models that wrote them.\n");
    }

    s.push_str("\n## Known limits\n\n");
    let mut limits = vec![
        "Labels and cells come from automatic labelling (or the generator's intent); some records sit in the wrong cell.".to_string(),
        "Synthetic inputs written by small models follow their cell only loosely and read less like real messages; see the report's synthetic-vs-real gap.".to_string(),
        "Responses are model-written; judge scores are heuristic or model-based, not clinical review.".to_string(),
        "Single-turn only: one user message and one response per example.".to_string(),
        "Crisis detection (risk=crisis, answered from the crisis template) leans to recall: on 240 real questions to therapists, about two of every three flags were heavy but ordinary distress. Review risk=crisis records before training.".to_string(),
    ];
    if summary.judged < summary.exported {
        limits.push(format!(
            "{} of {} exported records were not judged: their SFT response is simply the first candidate.",
            summary.exported - summary.judged,
            summary.exported
        ));
    }
    if summary.preference_pairs == 0 {
        limits.push("No preference pairs: the judge set no `judge.rejected`, so the preference and unpaired files are empty.".to_string());
    }
    let small = summary
        .cells
        .values()
        .filter(|n| n.iter().sum::<u64>() < 5)
        .count();
    if small > 0 {
        limits.push(format!(
            "{small} cells hold fewer than 5 records; their validation and test shares are noisy."
        ));
    }
    if !summary.excluded.contains_key("crisis") && !config.keep_flags.iter().any(|f| f == "crisis")
    {
        limits.push("Crisis inputs are in the data only if they were not flagged; review risk=crisis records and their responses before training.".to_string());
    }
    for l in limits {
        let _ = writeln!(s, "- {l}");
    }
    s
}
