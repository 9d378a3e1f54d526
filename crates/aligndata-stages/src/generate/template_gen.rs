//! `--backend template`: a model-free generator, for instant dry runs and tests.
//!
//! Each message expresses **every** value of its cell: it takes one sentence from the examples
//! of each of the cell's values (dimensions in a random order), so the theme, the situation, the
//! emotion and the risk all have their own words in it; a longer length band adds more. Example
//! sentences often carry more than their own value ("Interview tomorrow. I already know I'm
//! going to blow it." says job-interview as well as fear-of-failure), so each sentence is scored
//! against the whole cell by the taxonomy's keywords: +1 for a keyword of one of the cell's
//! values, −1 for a keyword of a competing value, and the pick favours the best fit (weight
//! 3^(score − best)) while still varying. The sampled style then perturbs the text: openers and
//! closers, hedges, lower case, typos. Everything it knows comes from the taxonomy and the
//! persona file. The texts are plausible but not novel: their wording comes from the examples,
//! which is exactly what the near-duplicate filter and the diversity figures should show.

use aligndata_core::{Cell, Taxonomy};

use super::persona::Persona;
use super::rng::Rng;

/// One example sentence and the (dimension, value) pairs whose keywords it contains.
#[derive(Debug, Clone)]
struct Sentence {
    text: String,
    mentions: Vec<(usize, usize)>,
}

/// The sentences of every value's examples, split and keyword-tagged once per run.
#[derive(Debug, Clone)]
pub struct Bank {
    /// [dimension][value] → sentences.
    sentences: Vec<Vec<Vec<Sentence>>>,
}

impl Bank {
    /// Splits and tags the examples of every value of `taxonomy`.
    pub fn new(taxonomy: &Taxonomy) -> Bank {
        // (dimension, value, lower-cased keyword)
        let keywords: Vec<(usize, usize, String)> = taxonomy
            .dimensions
            .iter()
            .enumerate()
            .flat_map(|(d, dim)| {
                dim.values.iter().enumerate().flat_map(move |(v, val)| {
                    val.keywords.iter().map(move |k| (d, v, k.to_lowercase()))
                })
            })
            .filter(|(_, _, k)| !k.trim().is_empty())
            .collect();
        let tag = |text: &str| -> Vec<(usize, usize)> {
            let padded = format!(" {} ", words_only(text));
            let mut m: Vec<(usize, usize)> = keywords
                .iter()
                .filter(|(_, _, k)| padded.contains(&format!(" {} ", words_only(k))))
                .map(|(d, v, _)| (*d, *v))
                .collect();
            m.sort_unstable();
            m.dedup();
            m
        };
        let sentences = taxonomy
            .dimensions
            .iter()
            .map(|dim| {
                dim.values
                    .iter()
                    .map(|val| {
                        val.examples
                            .iter()
                            .flat_map(|e| sentences(e))
                            .map(|t| Sentence {
                                mentions: tag(&t),
                                text: t,
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Bank { sentences }
    }

    /// How well a sentence fits `cell`: keywords of its values minus keywords of competitors.
    fn fit(&self, s: &Sentence, cell: &Cell) -> i32 {
        s.mentions
            .iter()
            .map(|&(d, v)| if cell.0.get(d) == Some(&v) { 1 } else { -1 })
            .sum()
    }

    /// One sentence for dimension `d` of `cell`, not already in `taken`, favouring the best fit.
    fn pick(&self, cell: &Cell, d: usize, taken: &[String], rng: &mut Rng) -> Option<String> {
        let v = *cell.0.get(d)?;
        let pool: Vec<&Sentence> = self
            .sentences
            .get(d)?
            .get(v)?
            .iter()
            .filter(|s| !taken.contains(&s.text))
            .collect();
        let fits: Vec<i32> = pool.iter().map(|s| self.fit(s, cell)).collect();
        let best = *fits.iter().max()?;
        let weights: Vec<f64> = fits.iter().map(|&f| 3f64.powi(f - best)).collect();
        Some(pool[rng.weighted(&weights)].text.clone())
    }
}

/// Lower case, letters, digits and apostrophes; everything else a single space.
fn words_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() || c == '\'' || c == '’' {
            out.push(if c == '’' { '\'' } else { c });
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    out.trim().to_string()
}

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
pub fn compose(bank: &Bank, cell: &Cell, persona: &Persona, rng: &mut Rng) -> String {
    let n_sentences = persona
        .style
        .values()
        .find_map(|f| f.sentences)
        .unwrap_or(2)
        .max(1);
    let mut dims: Vec<usize> = (0..bank.sentences.len()).collect();
    rng.shuffle(&mut dims);
    // One sentence per dimension first (the cell), then more from the same pools (the length).
    let mut parts: Vec<String> = Vec::new();
    for &d in &dims {
        if let Some(s) = bank.pick(cell, d, &parts, rng) {
            parts.push(s);
        }
    }
    let mut i = 0;
    while parts.len() < n_sentences && i < dims.len() * 2 {
        if let Some(s) = bank.pick(cell, dims[i % dims.len()], &parts, rng) {
            parts.push(s);
        }
        i += 1;
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
