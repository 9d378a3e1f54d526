//! `--backend template`: a model-free generator, for instant dry runs and tests.
//!
//! It recombines sentences from the examples of the cell's values (one dimension's example
//! per sentence, dimensions in a random order) and perturbs them with the sampled style: its
//! sentence count, openers and closers, hedges, lower case, typos. Everything it knows comes
//! from the taxonomy and the persona file. The texts are plausible but not novel: their
//! wording comes from the examples, which is exactly what the near-duplicate filter and the
//! diversity figures should show.

use aligndata_core::{Cell, Taxonomy};

use super::persona::Persona;
use super::rng::Rng;

/// Splits text into sentences at `.`, `!`, `?` followed by a space.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        cur.push(c);
        let end =
            matches!(c, '.' | '!' | '?') && chars.get(i + 1).is_none_or(|n| n.is_whitespace());
        if end {
            let s = cur.trim().to_string();
            if !s.is_empty() {
                out.push(s);
            }
            cur.clear();
        }
    }
    let s = cur.trim().to_string();
    if !s.is_empty() {
        out.push(s);
    }
    out
}

/// One message for `cell` in the style of `persona`.
pub fn compose(taxonomy: &Taxonomy, cell: &Cell, persona: &Persona, rng: &mut Rng) -> String {
    let n_sentences = persona
        .style
        .values()
        .find_map(|f| f.sentences)
        .unwrap_or(2)
        .max(1);
    let mut dims: Vec<usize> = (0..taxonomy.dimensions.len()).collect();
    rng.shuffle(&mut dims);
    // Pools of sentences per dimension, from the cell's value examples.
    let pools: Vec<Vec<String>> = dims
        .iter()
        .map(|&d| {
            taxonomy
                .cell_value(cell, d)
                .map(|v| v.examples.iter().flat_map(|e| sentences(e)).collect())
                .unwrap_or_default()
        })
        .filter(|p: &Vec<String>| !p.is_empty())
        .collect();
    let mut parts: Vec<String> = Vec::new();
    for i in 0..n_sentences {
        if pools.is_empty() {
            break;
        }
        let pool = &pools[i % pools.len()];
        if let Some(s) = rng.pick(pool)
            && !parts.contains(s)
        {
            parts.push(s.clone());
        }
    }
    let hedges: Vec<&String> = persona
        .style
        .values()
        .flat_map(|f| f.hedges.iter())
        .collect();
    if !hedges.is_empty() && !parts.is_empty() {
        let i = rng.below(parts.len());
        if let Some(h) = rng.pick(&hedges) {
            parts[i] = format!("{h} {}", lower_first(&parts[i]));
        }
    }
    let openers: Vec<&String> = persona
        .style
        .values()
        .flat_map(|f| f.openers.iter())
        .collect();
    if rng.f64() < 0.5
        && let Some(o) = rng.pick(&openers)
    {
        parts.insert(0, (*o).clone());
    }
    let closers: Vec<&String> = persona
        .style
        .values()
        .flat_map(|f| f.closers.iter())
        .collect();
    if rng.f64() < 0.6
        && let Some(c) = rng.pick(&closers)
    {
        parts.push((*c).clone());
    }
    let joiner = persona
        .style
        .values()
        .find_map(|f| f.joiner.clone())
        .unwrap_or_else(|| " ".to_string());
    let mut text = if joiner == " " {
        parts.join(" ")
    } else {
        // A run-on register joins without the inner full stops.
        let n = parts.len();
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let p = if i > 0 { lower_first(p) } else { p.clone() };
                if i + 1 < n {
                    p.trim_end_matches('.').to_string()
                } else {
                    p
                }
            })
            .collect::<Vec<_>>()
            .join(&joiner)
    };
    let typo_rate = persona
        .style
        .values()
        .find_map(|f| f.typo_rate)
        .unwrap_or(0.0);
    if typo_rate > 0.0 {
        text = text
            .split(' ')
            .map(|w| {
                if rng.f64() < typo_rate {
                    swap_letters(w, rng)
                } else {
                    w.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
    }
    if persona.style.values().any(|f| f.lowercase) {
        text = text.to_lowercase();
    }
    if persona.style.values().any(|f| f.no_final_period) && text.ends_with('.') {
        text.pop();
    }
    text
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        // Keep "I" and acronyms as they are.
        Some(f) if f.is_uppercase() && c.clone().next().is_some_and(|n| n.is_lowercase()) => {
            f.to_lowercase().chain(c).collect()
        }
        _ => s.to_string(),
    }
}

fn swap_letters(w: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = w.chars().collect();
    let letters: Vec<usize> = (0..chars.len().saturating_sub(1))
        .filter(|&i| chars[i].is_alphabetic() && chars[i + 1].is_alphabetic())
        .collect();
    if let Some(&i) = rng.pick(&letters) {
        chars.swap(i, i + 1);
    }
    chars.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_sentences() {
        assert_eq!(
            sentences("One. Two? Three 3.5 here! four"),
            vec!["One.", "Two?", "Three 3.5 here!", "four"]
        );
    }
}
