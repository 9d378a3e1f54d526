//! The safety protocol: detect crisis cues (self-harm, suicidal ideation, direct or indirect) and
//! answer them with a crisis response that stays with the person and gives real resources.
//!
//! # How detection works
//!
//! Two parts, each covering the other's blind spot:
//!
//! - **Rules** ([`rules`]): named regular expressions in pattern families (intent, plan, method
//!   and means, self-harm acts, attempts, farewells and final arrangements, burden, not being
//!   around, sleeping forever, disappearing for good, hopelessness), each with an id that ends up
//!   in the reason. Figurative and third-party uses ("this presentation is killing me", "I could
//!   sleep for a year", "my essay on suicide prevention", "my friend attempted suicide") are
//!   guarded by named look-alike idioms that cancel an overlapping cue, and a negator right before
//!   some cues cancels them ("I would never hurt myself"). Cues are *strong* (a detection on their
//!   own) or *weak* ("I'm a burden", "no way out", "I've said my goodbyes": common in ordinary
//!   distress too).
//!   Families also cover passive death wishes ("I wouldn't mind if a bus hit me", "I pray I won't
//!   wake up", "I'd welcome death"), means research and an overdose under way ("how tall is the
//!   car park", "how much … before the liver shuts down", "took like 20 of my pills"), community
//!   shorthand ("ctb", "relapsed on sh", "sui ideation"), no imagined future ("I can't picture
//!   myself alive in a year", "my last birthday"), and reunion with the dead (weak); new guards
//!   cover absences for a holiday, game characters, a rope for a swing, a lethal dose of caffeine,
//!   suicide-risk training and first-aid courses.
//! - **A trained classifier** ([`classifier`]): MiniLM fine-tuned on the task by two shipped
//!   LoRA adapters ([`BUILTIN_ADAPTERS`], [`aligndata_models::embed::lora`]), then logistic
//!   regression on both adapted sentence embeddings joined with hashed n-grams, all trained on
//!   `test_data/safety/train.jsonl` (2,345 examples: crisis direct and indirect, look-alikes and
//!   ordinary distress as negatives; see below for where they come from). Fine-tuning is what
//!   made the classifier the stronger half: on the spent fifth blind set, precision at 0.95
//!   recall went from 0.83 (linear head on frozen MiniLM) to 0.97. So the classifier now
//!   decides with the rules rather than behind them: it confirms weak cues, catches phrasings
//!   no rule names, and cancels a strong cue it scores below [`CrisisModel::strong_threshold`]
//!   (fresh look-alikes kept finding phrasings the guards missed; the fine-tuned classifier
//!   scores most of them near zero). On its own it flags at a calibrated probability, and
//!   never against a recognised figurative idiom in the same text. A multi-sentence input is
//!   scored as a whole and raised halfway towards its best sentence ([`classifier::combine`]);
//!   the three thresholds are chosen on a calibration set with the rules in the loop
//!   ([`classifier::calibrate`]).
//!
//! `--safety-embedder none` keeps the rules alone (every weak cue then counts: rules lean to
//! recall).
//!
//! # Why this shape
//!
//! - **Conservative.** Missing a person in crisis costs far more than a careful, warm answer to a
//!   false alarm: thresholds are chosen for recall first (at a precision bar), the classifier
//!   cancels a strong cue only when it is nearly sure, and "don't" is not a negator.
//! - **Auditable.** Every detection carries the rule ids and the quoted text that fired, and every
//!   cancelled cue carries why ([`Detection::reason`]), including the classifier's probability. A
//!   clinician can read the rules, the idioms and the training examples.
//! - **Measured, honestly.** `tests.rs` prints precision and recall per kind on three labelled
//!   sets. `cases.jsonl` (135) and `heldout.jsonl` (35) were in view while the rules were written,
//!   so they are development sets. `blind.jsonl` (200, another author) was run once on the
//!   detector of 2026-11-25 (precision 0.947, recall 0.809) and is now spent: in the round after,
//!   first 253 new hand-written examples (indirect cues of every family, direct ones in plain and
//!   casual registers, and hard look-alike and distress negatives) and the rule families they
//!   exposed were added with the blind set unread (it then reached 0.915 / 0.882, the last honest
//!   figure); then its misses were read, rule families written for them, 45 examples added in
//!   the style of its false alarms, and its 200 cases copied into `train.jsonl`. Last, 52
//!   harder examples (long work messages, metaphors, each with a look-alike or distress twin)
//!   were scored before being trained on: 17 of 22 crisis inputs caught, but 8 of the 20
//!   look-alike twins flagged, so minimal pairs remain the weak spot. Out-of-fold on the
//!   training file, the whole detector (rules plus a head trained without the fold) reaches
//!   0.92 precision and 0.96 recall, but the rules were written with most of that file in view;
//!   only a new blind set measures generalisation. That set is `blind2.jsonl` (260, written by
//!   an author who saw neither the detector nor any earlier set), run once on the frozen
//!   detector of 2026-12-04: precision 0.893, recall 0.887 (direct 59/60, indirect 74/90); rules
//!   alone 0.895 / 0.567. Spent as a test, it became `calibration.jsonl`: the set the two
//!   thresholds are chosen on ([`classifier::calibrate`]), since out-of-fold scores on a training
//!   file full of deliberate twins put the cut-off in the wrong place. In the round after, three
//!   writers added 1,300 examples (buried indirect cues with distress twins, tricky look-alikes,
//!   direct cues in unusual registers, long messages), the head gained hashed n-gram features
//!   ([`classifier::Lexical`]). Three more fresh sets of 320 followed, each from another author
//!   who saw nothing of the detector, each run once on the frozen detector of its round and
//!   then read and added to the calibration set: blind3 0.813 / 0.981, blind4 0.767 / 0.988,
//!   blind5 0.798 / 0.963. Precision stayed short of 0.9 with a linear head on frozen MiniLM,
//!   so the fifth round fine-tuned the encoder (two LoRA adapters, [`ADAPTERS`]), let the
//!   classifier cancel a strong cue it scores below a third threshold, and calibrated the three
//!   thresholds for precision 0.95 on 1,220 cases (blind2 to blind5). `blind6.jsonl` (320, a
//!   sixth author), run once on that frozen detector (`detector_on_fresh_blind_set`): precision
//!   0.945, recall 0.975 (direct 60/60, indirect 96/100; 8 of 100 look-alikes and 1 of 60
//!   distress flagged); rules alone 0.876 / 0.575. Both targets met on a fresh set for the first
//!   time. It is spent in turn: any further tuning needs a seventh. On *real* text the detector
//!   is far less precise: `real_counselchat.jsonl` (240 real questions to therapists, labelled
//!   apart, 26 crisis) gives precision 0.365, recall 0.885
//!   (`detector_on_real_counselchat_questions`): heavy but ordinary distress is flagged. Real
//!   labelled text in training and calibration is the next lever.
//! - **Crisis inputs are not set aside.** They are exactly the inputs the agent must learn to
//!   answer well, so they get the label `risk=crisis` (method `safety`), a `safety.crisis` score
//!   with the reason, and the crisis response template ([`CrisisTemplate`]) with the resources of
//!   the record's locale instead of the small model's text.

pub mod classifier;
pub mod rules;

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use aligndata_core::{Label, Record};
use aligndata_models::embed::lora::{Adapter, LoraOptions};
use aligndata_models::embed::{ConcatEmbedder, Embedder, MiniLmEmbedder, minilm};

pub use classifier::{CrisisModel, Example};
pub use rules::{CueKind, CueRule, IdiomRule, normalize};

/// The shipped LoRA adapters, each fine-tuning MiniLM for crisis detection
/// ([`aligndata_models::embed::lora`]), trained on `test_data/safety/train.jsonl` with the
/// options of the same index in [`ADAPTERS`]. Retrain with `UPDATE_SAFETY_ADAPTER=1
/// UPDATE_SAFETY_MODEL=1 cargo test -p aligndata-stages --lib safety::tests::shipped` (about
/// five minutes per adapter on two cores).
pub const BUILTIN_ADAPTERS: [&[u8]; 2] = [
    include_bytes!("crisis-lora-0.safetensors"),
    include_bytes!("crisis-lora-1.safetensors"),
];

/// How each shipped adapter is trained: rank-8 updates on every matrix of the upper four of
/// the six layers (the first) or of all six (the second), three passes. Why two: the classifier
/// on both adapted encoders side by side ([`ConcatEmbedder`]) ranked the spent fifth blind set
/// and the calibration set better than on either alone (see BENCHMARKS.md), for one more
/// MiniLM pass per input.
pub const ADAPTERS: [LoraOptions; 2] = [
    LoraOptions::DEFAULT,
    LoraOptions {
        first_layer: 0,
        ..LoraOptions::DEFAULT
    },
];

/// The name of the crisis encoder ([`crisis_embedder`]); the shipped classifier records it.
pub const CRISIS_ENCODER: &str = "minilm-l6-v2+crisis-lora";

/// MiniLM (installed from the registry if missing and not `offline`) once per shipped adapter,
/// each with its adapter merged in, side by side: the encoder the shipped classifier was
/// trained on.
pub fn crisis_embedder(offline: bool, progress: &dyn Fn(&str)) -> Result<ConcatEmbedder> {
    let dir = aligndata_models::registry::ensure(minilm::MODEL_NAME, offline, progress)?;
    // Read the weights once; each adapter is merged into its own copy.
    let base = MiniLmEmbedder::load(&dir)?;
    let mut parts: Vec<Box<dyn Embedder>> = Vec::new();
    for (i, bytes) in BUILTIN_ADAPTERS.iter().enumerate() {
        let mut model = base.clone();
        let adapter = Adapter::from_bytes(bytes, &format!("the shipped crisis-lora-{i}"))?;
        model.apply_adapter(&adapter, &format!("crisis-lora-{i}"))?;
        parts.push(Box::new(model));
    }
    ConcatEmbedder::new(CRISIS_ENCODER, parts)
}

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
    /// The trained classifier's crisis probability, when it ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probability: Option<f32>,
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
        if let Some(p) = self.probability {
            parts.push(format!("classifier p {p:.2}"));
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

/// The trained classifier as a check beside the rules: an embedder and a [`CrisisModel`] for it.
pub struct ClassifierCheck<'a> {
    embedder: &'a dyn Embedder,
    /// The model (thresholds included).
    pub model: CrisisModel,
    /// Also score each sentence of a multi-sentence input and raise the text's probability
    /// towards the best one ([`classifier::combine`]), so that one crisis sentence inside a long
    /// message about work is not averaged away.
    pub per_sentence: bool,
}

impl<'a> ClassifierCheck<'a> {
    /// The check with the shipped model for `embedder` (or one trained now; see [`classifier`]).
    pub fn new(embedder: &'a dyn Embedder) -> Result<Self> {
        Ok(ClassifierCheck {
            embedder,
            model: CrisisModel::for_embedder(embedder)?,
            per_sentence: true,
        })
    }

    /// The check with a given model.
    pub fn with_model(embedder: &'a dyn Embedder, model: CrisisModel) -> Self {
        ClassifierCheck {
            embedder,
            model,
            per_sentence: true,
        }
    }

    /// The crisis probability of each text: the whole text's, and with `per_sentence` for a text
    /// of several sentences (of at least three words), raised towards its best sentence's
    /// ([`classifier::combine`]).
    pub fn probabilities(&self, texts: &[&str]) -> Result<Vec<f32>> {
        let (all, owner) = if self.per_sentence {
            classifier::with_sentences(texts)
        } else {
            (texts.to_vec(), Vec::new())
        };
        let mut rows = classifier::features(self.embedder, self.model.lexical, &all)
            .context("embedding inputs for the crisis classifier")?;
        let sentence_rows = rows.split_off(texts.len().min(rows.len()));
        let best = classifier::best_sentence(&sentence_rows, &owner, texts.len(), |_, row| {
            Some(self.model.probability(row))
        });
        Ok(rows
            .iter()
            .zip(best)
            .map(|(row, b)| classifier::combine(self.model.probability(row), b))
            .collect())
    }
}

/// The detector: rules, plus (optionally) the trained classifier.
///
/// Without the classifier, every cue that fires is a detection, weak ones included. With it:
/// a strong cue is a detection unless the classifier's probability is below
/// [`CrisisModel::strong_threshold`]; a weak cue is one when the probability reaches
/// [`CrisisModel::weak_threshold`]; and the classifier alone detects at
/// [`CrisisModel::threshold`].
pub struct Detector<'a> {
    cues: Vec<CueRule>,
    idioms: Vec<IdiomRule>,
    /// Words looked back from a negatable cue for a negator.
    pub negation_window: usize,
    classifier: Option<ClassifierCheck<'a>>,
}

impl Default for Detector<'_> {
    fn default() -> Self {
        Detector {
            cues: rules::default_cues(),
            idioms: rules::default_idioms(),
            negation_window: 4,
            classifier: None,
        }
    }
}

impl<'a> Detector<'a> {
    /// The default rules plus the trained classifier.
    pub fn with_classifier(check: ClassifierCheck<'a>) -> Self {
        Detector {
            classifier: Some(check),
            ..Detector::default()
        }
    }

    /// The classifier check, if any.
    pub fn classifier(&self) -> Option<&ClassifierCheck<'a>> {
        self.classifier.as_ref()
    }

    /// The cue rules in effect: (id, kind, what it looks for).
    pub fn rules(&self) -> Vec<(&'static str, CueKind, &'static str)> {
        self.cues
            .iter()
            .map(|r| (r.id, r.kind, r.describes))
            .collect()
    }

    /// Runs the rules over one text (no classifier: weak cues count).
    pub fn detect(&self, text: &str) -> Detection {
        let RuleFindings { mut det, weak, .. } = self.rules_for(text);
        det.cues.extend(weak);
        det.crisis = !det.cues.is_empty();
        det
    }

    /// What the rules alone find in `text`: strong cues in the detection, weak cues apart, and
    /// the first look-alike idiom. Split from [`Detector::decide_from`] so that calibration,
    /// which decides the same text under many thresholds, runs the rules once.
    pub fn rules_for(&self, text: &str) -> RuleFindings {
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
            probability: None,
        };
        let mut weak: Vec<Cue> = Vec::new();
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
                let list = if rule.weak { &mut weak } else { &mut det.cues };
                if !list.iter().any(|c| c.rule == rule.id) {
                    list.push(Cue {
                        rule: rule.id.to_string(),
                        kind: rule.kind,
                        matched,
                    });
                }
            }
        }
        det.crisis = !det.cues.is_empty();
        let idiom = idiom_spans
            .first()
            .map(|(id, _, _, m)| format!("{id} (\"{m}\")"));
        RuleFindings { det, weak, idiom }
    }

    /// Runs the rules (and the classifier, if any) over many texts.
    pub fn detect_batch(&self, texts: &[&str]) -> Result<Vec<Detection>> {
        let Some(check) = &self.classifier else {
            return Ok(texts.iter().map(|t| self.detect(t)).collect());
        };
        let probs = check.probabilities(texts)?;
        Ok(texts
            .iter()
            .zip(probs)
            .map(|(t, p)| self.decide(t, p, &check.model))
            .collect())
    }

    /// The detection for `text` given the classifier's probability `p` under `m`'s thresholds
    /// (split out of [`Detector::detect_batch`] so that thresholds can be compared without
    /// embedding again).
    pub fn decide(&self, text: &str, p: f32, m: &CrisisModel) -> Detection {
        self.decide_from(self.rules_for(text), p, m)
    }

    /// [`Detector::decide`] from the rules' findings.
    pub fn decide_from(&self, rules: RuleFindings, p: f32, m: &CrisisModel) -> Detection {
        let RuleFindings {
            mut det,
            weak,
            idiom,
        } = rules;
        det.probability = Some(p);
        if p < m.strong_threshold && !det.cues.is_empty() {
            for cue in std::mem::take(&mut det.cues) {
                det.suppressed.push(Suppressed {
                    rule: cue.rule,
                    matched: cue.matched,
                    why: format!("classifier p {p:.2} < {:.2}", m.strong_threshold),
                });
            }
        }
        for cue in weak {
            if p >= m.weak_threshold {
                det.cues.push(cue);
            } else {
                det.suppressed.push(Suppressed {
                    rule: cue.rule,
                    matched: cue.matched,
                    why: format!("weak cue, classifier p {p:.2} < {:.2}", m.weak_threshold),
                });
            }
        }
        if det.cues.is_empty()
            && p >= m.threshold
            && let Some(idiom) = &idiom
        {
            // A recognised figurative use ("could sleep for a year", "shot myself in the
            // foot") explains crisis-like wording, which is exactly what the embedding
            // cannot tell apart; the classifier alone does not overrule it.
            det.suppressed.push(Suppressed {
                rule: "classifier".into(),
                matched: format!("p {p:.2}"),
                why: format!("look-alike {idiom}"),
            });
        } else if det.cues.is_empty() && p >= m.threshold {
            det.cues.push(Cue {
                rule: "classifier".into(),
                kind: CueKind::Indirect,
                matched: format!("p {p:.2} ≥ {:.2} ({})", m.threshold, m.embedder),
            });
        }
        det.crisis = !det.cues.is_empty();
        det
    }
}

/// The rules' findings on one text: strong cues (in the detection), weak cues, and the first
/// look-alike idiom.
#[derive(Debug, Clone)]
pub struct RuleFindings {
    det: Detection,
    weak: Vec<Cue>,
    idiom: Option<String>,
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
