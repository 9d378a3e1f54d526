//! The safety protocol: detect crisis cues (self-harm, suicidal ideation, direct or indirect) and
//! answer them with a crisis response that stays with the person and gives real resources.
//!
//! # Why this shape
//!
//! - **Conservative.** Missing a person in crisis costs far more than a careful, warm answer to a
//!   false alarm, so rules lean to recall: negation only cancels a cue with a clear negator right
//!   before it, and look-alikes are cancelled only by named idioms ("suicide prevention", "dying
//!   to know"), never by a score.
//! - **Auditable.** Every detection carries the rule ids and the quoted text that fired, and every
//!   cancelled cue carries why it was cancelled ([`Detection::reason`]). A clinician can read the
//!   rules in [`rules`] and the labelled cases in `test_data/safety/cases.jsonl`.
//! - **Measured.** `tests::detector_meets_targets_on_labelled_cases` prints precision and recall
//!   per kind on those cases and asserts the targets of issue #6.
//! - **Crisis inputs are not set aside.** They are exactly the inputs the agent must learn to
//!   answer well, so they get the label `risk=crisis` (method `safety`), a `safety.crisis` score
//!   with the reason, and the crisis response template ([`CrisisTemplate`]) instead of the small
//!   model's text.
//!
//! An optional embedding check ([`EmbeddingCheck`]) adds a detection when an input is close to a
//! crisis exemplar and closer to it than to any look-alike exemplar; it only ever adds, so the
//! rules' recall is a floor.

pub mod rules;

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use aligndata_core::{Label, Record};
use aligndata_models::embed::Embedder;

pub use rules::{CueKind, CueRule, IdiomRule, normalize};

/// Name of the record score the protocol sets.
pub const SCORE_NAME: &str = "safety.crisis";
/// Label dimension and value for crisis inputs.
pub const RISK_DIMENSION: &str = "risk";
/// The value of [`RISK_DIMENSION`] for crisis inputs.
pub const CRISIS_VALUE: &str = "crisis";
/// The label method.
pub const METHOD: &str = "safety";

/// One cue that fired.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cue {
    /// Rule id (`direct.kill_self`, `embedding`).
    pub rule: String,
    /// Direct or indirect.
    pub kind: CueKind,
    /// The normalised text the rule matched.
    pub matched: String,
}

/// A cue that matched but was cancelled, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppressed {
    /// Rule id.
    pub rule: String,
    /// The normalised text the rule matched.
    pub matched: String,
    /// `negated by "never"` or `look-alike idiom.die_for ("dying to know")`.
    pub why: String,
}

/// What the detector found in one text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detection {
    /// True when at least one cue fired.
    pub crisis: bool,
    /// Cues that fired.
    pub cues: Vec<Cue>,
    /// Cues that matched and were cancelled.
    pub suppressed: Vec<Suppressed>,
}

impl Detection {
    /// One line naming each cue (and each cancelled one), for reasons and audits.
    pub fn reason(&self) -> String {
        let mut parts: Vec<String> = self
            .cues
            .iter()
            .map(|c| format!("{} cue {} (\"{}\")", kind_word(c.kind), c.rule, c.matched))
            .collect();
        if parts.is_empty() {
            parts.push("no crisis cue".to_string());
        }
        for s in &self.suppressed {
            parts.push(format!("ignored {} (\"{}\"): {}", s.rule, s.matched, s.why));
        }
        parts.join("; ")
    }

    /// Direct when any direct cue fired, else indirect; `None` when no crisis.
    pub fn strongest(&self) -> Option<CueKind> {
        if self.cues.iter().any(|c| c.kind == CueKind::Direct) {
            Some(CueKind::Direct)
        } else {
            self.cues.first().map(|c| c.kind)
        }
    }
}

fn kind_word(kind: CueKind) -> &'static str {
    match kind {
        CueKind::Direct => "direct",
        CueKind::Indirect => "indirect",
    }
}

/// Embedding similarity to crisis exemplars, as an extra (additive) check.
pub struct EmbeddingCheck<'a> {
    embedder: &'a dyn Embedder,
    crisis: Vec<Vec<f32>>,
    lookalike: Vec<Vec<f32>>,
    /// Minimum cosine to the nearest crisis exemplar.
    pub threshold: f32,
}

impl<'a> EmbeddingCheck<'a> {
    /// Embeds the exemplars once.
    pub fn new(
        embedder: &'a dyn Embedder,
        crisis: &[&str],
        lookalike: &[&str],
        threshold: f32,
    ) -> Result<Self> {
        let crisis = embedder
            .embed(crisis)
            .context("embedding crisis exemplars")?;
        let lookalike = if lookalike.is_empty() {
            Vec::new()
        } else {
            embedder.embed(lookalike)?
        };
        Ok(EmbeddingCheck {
            embedder,
            crisis,
            lookalike,
            threshold,
        })
    }

    fn best(rows: &[Vec<f32>], v: &[f32]) -> f32 {
        rows.iter()
            .map(|r| r.iter().zip(v).map(|(a, b)| a * b).sum::<f32>())
            .fold(f32::MIN, f32::max)
    }
}

/// Crisis exemplars for [`EmbeddingCheck`] (not the test cases).
pub const CRISIS_EXEMPLARS: &[&str] = &[
    "I want to end my life",
    "I am thinking about killing myself",
    "everyone would be better off if I were gone",
    "I have been hurting myself on purpose",
    "I don't want to be here anymore",
    "I have a plan to die",
];

/// Look-alike exemplars for [`EmbeddingCheck`].
pub const LOOKALIKE_EXEMPLARS: &[&str] = &[
    "this presentation is killing me",
    "I'm dying of embarrassment",
    "I could kill for a coffee",
    "my boss is going to kill me",
];

/// The rule-based detector, with an optional embedding check.
pub struct Detector<'a> {
    cues: Vec<CueRule>,
    idioms: Vec<IdiomRule>,
    /// Words looked back from a negatable cue for a negator.
    pub negation_window: usize,
    embedding: Option<EmbeddingCheck<'a>>,
}

impl Default for Detector<'_> {
    fn default() -> Self {
        Detector {
            cues: rules::default_cues(),
            idioms: rules::default_idioms(),
            negation_window: 4,
            embedding: None,
        }
    }
}

impl<'a> Detector<'a> {
    /// The default rules plus an embedding check.
    pub fn with_embedding(embedding: EmbeddingCheck<'a>) -> Self {
        Detector {
            embedding: Some(embedding),
            ..Detector::default()
        }
    }

    /// The cue rules in effect: (id, kind, what it looks for).
    pub fn rules(&self) -> Vec<(&'static str, CueKind, &'static str)> {
        self.cues
            .iter()
            .map(|r| (r.id, r.kind, r.describes))
            .collect()
    }

    /// Runs the rules over one text.
    pub fn detect(&self, text: &str) -> Detection {
        let norm = normalize(text);
        let idiom_spans: Vec<(&str, usize, usize, &str)> = self
            .idioms
            .iter()
            .flat_map(|i| {
                i.regex
                    .find_iter(&norm)
                    .map(move |m| (i.id, m.start(), m.end(), m.as_str()))
            })
            .collect();
        let mut det = Detection {
            crisis: false,
            cues: Vec::new(),
            suppressed: Vec::new(),
        };
        for rule in &self.cues {
            for m in rule.regex.find_iter(&norm) {
                let matched = m.as_str().to_string();
                if let Some((id, _, _, idiom)) = idiom_spans
                    .iter()
                    .find(|(_, s, e, _)| *s < m.end() && m.start() < *e)
                {
                    det.suppressed.push(Suppressed {
                        rule: rule.id.to_string(),
                        matched,
                        why: format!("look-alike {id} (\"{idiom}\")"),
                    });
                    continue;
                }
                if rule.negatable
                    && let Some(neg) = rules::negated_before(&norm, m.start(), self.negation_window)
                {
                    det.suppressed.push(Suppressed {
                        rule: rule.id.to_string(),
                        matched,
                        why: format!("negated by \"{neg}\""),
                    });
                    continue;
                }
                if !det.cues.iter().any(|c| c.rule == rule.id) {
                    det.cues.push(Cue {
                        rule: rule.id.to_string(),
                        kind: rule.kind,
                        matched,
                    });
                }
            }
        }
        det.crisis = !det.cues.is_empty();
        det
    }

    /// Runs the rules (and the embedding check, if any) over many texts.
    pub fn detect_batch(&self, texts: &[&str]) -> Result<Vec<Detection>> {
        let mut out: Vec<Detection> = texts.iter().map(|t| self.detect(t)).collect();
        if let Some(check) = &self.embedding {
            let vecs = check.embedder.embed(texts)?;
            for (det, v) in out.iter_mut().zip(&vecs) {
                let c = EmbeddingCheck::best(&check.crisis, v);
                let l = EmbeddingCheck::best(&check.lookalike, v);
                if !det.crisis && c >= check.threshold && c > l {
                    det.cues.push(Cue {
                        rule: "embedding".into(),
                        kind: CueKind::Indirect,
                        matched: format!("cos {c:.2} to a crisis exemplar (look-alike {l:.2})"),
                    });
                    det.crisis = true;
                }
            }
        }
        Ok(out)
    }
}

/// Marks a record as a crisis input: label `risk=crisis` (method `safety`) and the
/// `safety.crisis` score with the reason. Non-crisis records get the score 0 with the reason too,
/// so a reviewer sees that the check ran.
pub fn mark(record: &mut Record, det: &Detection) {
    record.set_score(SCORE_NAME, if det.crisis { 1.0 } else { 0.0 }, det.reason());
    if det.crisis
        && !record
            .labels
            .iter()
            .any(|l| l.dimension == RISK_DIMENSION && l.value == CRISIS_VALUE && l.method == METHOD)
    {
        record.labels.push(Label {
            dimension: RISK_DIMENSION.into(),
            value: CRISIS_VALUE.into(),
            confidence: 1.0,
            method: METHOD.into(),
        });
    }
}

/// One crisis resource: a line or service people can reach now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The service's name.
    pub name: String,
    /// How to reach it (`call or text 988`).
    pub contact: String,
    /// Its web address.
    #[serde(default)]
    pub url: Option<String>,
}

impl Resource {
    /// `name: contact (url)`.
    pub fn line(&self) -> String {
        match &self.url {
            Some(u) => format!("{}: {} ({u})", self.name, self.contact),
            None => format!("{}: {}", self.name, self.contact),
        }
    }
}

/// The resources file: per locale, the services to name; a fallback locale for the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// Locale used when none is asked for or the asked one is missing.
    pub fallback: String,
    /// Locale id (`US`, `UK`, `intl`) → resources.
    pub locales: std::collections::BTreeMap<String, Vec<Resource>>,
    /// Said after the resources, in every locale.
    #[serde(default)]
    pub emergency: Option<String>,
}

impl Resources {
    /// Reads a resources YAML file (errors name file, line and field).
    pub fn load(path: &Path) -> Result<Resources> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read {}", path.display()))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses resources YAML; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Resources> {
        let r: Resources = aligndata_core::yaml::from_yaml_str(text, file)?;
        if !r.locales.contains_key(&r.fallback) {
            anyhow::bail!(
                "{file}: fallback locale `{}` has no entry under `locales`",
                r.fallback
            );
        }
        Ok(r)
    }

    /// The resources for `locale` (case-insensitive), else the fallback's.
    pub fn for_locale(&self, locale: Option<&str>) -> &[Resource] {
        let hit = locale.and_then(|l| {
            self.locales
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(l))
                .map(|(_, v)| v)
        });
        hit.or_else(|| self.locales.get(&self.fallback))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The resources as a bulleted block, plus the emergency line.
    pub fn block(&self, locale: Option<&str>) -> String {
        let mut lines: Vec<String> = self
            .for_locale(locale)
            .iter()
            .map(|r| format!("- {}", r.line()))
            .collect();
        if let Some(e) = &self.emergency {
            lines.push(e.clone());
        }
        lines.join("\n")
    }
}

/// The built-in copy of `examples/self-doubt/resources.yaml`.
pub const DEFAULT_RESOURCES: &str = include_str!("../../../../examples/self-doubt/resources.yaml");

/// The crisis response: one or more variants, each with `{resources}` where the block goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrisisTemplate {
    /// Response variants; candidate `i` uses variant `i mod len`.
    pub variants: Vec<String>,
}

impl CrisisTemplate {
    /// Renders variant `i` with the resources for `locale`.
    pub fn render(&self, i: usize, resources: &Resources, locale: Option<&str>) -> String {
        let fallback = DEFAULT_CRISIS_VARIANT;
        let v = if self.variants.is_empty() {
            fallback
        } else {
            &self.variants[i % self.variants.len()]
        };
        v.replace("{resources}", &resources.block(locale))
            .trim()
            .to_string()
    }
}

/// Used when a policy lists no crisis variants.
pub const DEFAULT_CRISIS_VARIANT: &str = "I'm really glad you told me this, and I'm here with you. \
It sounds like you're in a lot of pain right now, and that matters. Are you safe right now, and \
are you thinking about ending your life or hurting yourself? You don't have to carry this alone; \
you can reach someone right now:\n{resources}\nI'm not going anywhere. Would you tell me more about \
what's been happening?";

#[cfg(test)]
mod tests;
