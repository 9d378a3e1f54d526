//! Labelling by asking a language model, with a strict answer format and a parse check.
//!
//! The prompt lists every dimension with its value ids and one-line descriptions and asks for
//! exactly one line per dimension, `dimension: value` (or `none`). An answer that misses a
//! dimension or names a value the taxonomy does not have is rejected whole (the record gets no
//! `llm` labels and is counted as a parse failure): a half-understood answer is worse than none.
//!
//! Capable servers (OpenAI-compatible) follow this well. The bundled SmolLM2-135M mostly does not:
//! it is allowed, but expect most answers to fail the parse check, and read the summary's count.

use std::collections::BTreeMap;

use aligndata_core::Taxonomy;
use aligndata_models::llm::{ChatMessage, CompletionRequest};

/// The request for one text.
pub fn request(taxonomy: &Taxonomy, text: &str) -> CompletionRequest {
    let mut system = String::from(
        "You label a user's message for a dataset. For each dimension below, pick the ONE value id \
         that fits best, or `none` if no value fits.\n\n",
    );
    for dim in &taxonomy.dimensions {
        system.push_str(&format!(
            "Dimension `{}`: {}\n",
            dim.id,
            dim.description.trim()
        ));
        for v in &dim.values {
            let desc: String = v
                .description
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let short: String = desc.chars().take(160).collect();
            system.push_str(&format!("  - {}: {}\n", v.id, short));
        }
    }
    system
        .push_str("\nAnswer with exactly one line per dimension, in this form and nothing else:\n");
    for dim in &taxonomy.dimensions {
        system.push_str(&format!("{}: <value id or none>\n", dim.id));
    }
    let mut req = CompletionRequest::chat(vec![
        ChatMessage::system(system),
        ChatMessage::user(format!("Message:\n{}", text.trim())),
    ]);
    req.temperature = 0.0;
    req.max_tokens = (16 * taxonomy.dimensions.len() as u32).max(32);
    req
}

/// Parses an answer: per dimension id, `Some(value id)` or `None` for `none`. `Err` says why the
/// answer was rejected.
pub fn parse(
    taxonomy: &Taxonomy,
    answer: &str,
) -> Result<BTreeMap<String, Option<String>>, String> {
    let mut out = BTreeMap::new();
    for line in answer.lines() {
        let line = line.trim().trim_start_matches(['-', '*', ' ']).trim();
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().trim_matches('`').to_ascii_lowercase();
        let value = value
            .trim()
            .trim_matches(['`', '.', '"', '\''])
            .trim()
            .to_ascii_lowercase();
        let Some(dim) = taxonomy.dimensions.iter().find(|d| d.id == key) else {
            continue;
        };
        if out.contains_key(&dim.id) {
            continue;
        }
        if value == "none" {
            out.insert(dim.id.clone(), None);
        } else if dim.values.iter().any(|v| v.id == value) {
            out.insert(dim.id.clone(), Some(value));
        } else {
            return Err(format!("`{value}` is not a value of `{}`", dim.id));
        }
    }
    if let Some(missing) = taxonomy
        .dimensions
        .iter()
        .find(|d| !out.contains_key(&d.id))
    {
        return Err(format!("no line for dimension `{}`", missing.id));
    }
    Ok(out)
}
