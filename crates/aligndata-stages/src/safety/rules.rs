//! The crisis cue rules: each a named regular expression over normalised text.
//!
//! Why regular expressions and not a classifier: a reviewer (story 5, the clinician) must be able
//! to read *why* an input was treated as a crisis, and to change the rule set without training
//! anything. Every rule has an id that ends up in the reason string of each detection.
//!
//! Rules are matched on [`normalize`]d text (lowercase, straight apostrophes, collapsed spaces).
//! Three lists:
//! - **cues** (`direct` and `indirect`): a match is a detection, unless suppressed;
//! - **idioms**: look-alike phrases ("suicide prevention", "cut myself shaving"); a cue whose match
//!   overlaps an idiom's match is suppressed, and the suppression is recorded;
//! - **negation**: for cues marked `negatable`, a negator among the few words before the cue
//!   ("I would never hurt myself") suppresses it. "don't" is deliberately not a negator: "I don't
//!   want to kill myself but…" is still a conversation about suicide, and missing one costs more
//!   than a careful answer to a false alarm.

use regex::Regex;

/// Whether a cue names self-harm or suicide outright, or points at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CueKind {
    /// Suicide, self-harm, wanting to die, a method or a plan, said outright.
    Direct,
    /// Burdensomeness, goodbyes, giving things away, wanting to disappear for good.
    Indirect,
}

/// One cue rule.
pub struct CueRule {
    /// Stable id, named in reasons (`direct.kill_self`).
    pub id: &'static str,
    /// Direct or indirect.
    pub kind: CueKind,
    /// What the rule looks for, in words.
    pub describes: &'static str,
    /// Whether a negator just before the match suppresses it.
    pub negatable: bool,
    /// The compiled pattern.
    pub regex: Regex,
}

/// A look-alike phrase that cancels an overlapping cue.
pub struct IdiomRule {
    /// Stable id, named in the audit trail (`idiom.suicide_topic`).
    pub id: &'static str,
    /// The compiled pattern.
    pub regex: Regex,
}

/// (id, kind, negatable, description, pattern)
const CUES: &[(&str, CueKind, bool, &str, &str)] = &[
    (
        "direct.kill_self",
        CueKind::Direct,
        true,
        "harming or killing oneself",
        r"\b(kill|killing|killed|hang|hanging|hurt|hurting|harm|harming|cut|cutting|burn|burned|burnt|burning|shoot|shooting|drown|starve|starving|poison)\s+(my\s?self)\b",
    ),
    (
        "direct.self_harm",
        CueKind::Direct,
        true,
        "self-harm",
        r"\bself[- ]?(harm|harming|injur\w*|mutilat\w*)\b|\bbeen cutting\b|\bcutting again\b",
    ),
    (
        "direct.suicide",
        CueKind::Direct,
        true,
        "suicide or suicidal thoughts",
        r"\bsuicid\w*",
    ),
    (
        "direct.want_die",
        CueKind::Direct,
        false,
        "wanting to die or be dead",
        r"\b(want|wanna|wanted|wish|wishing|going|ready|plan|planning|need)\s+(to\s+)?(just\s+)?(die|be dead)\b|\bwish (i|that i) (was|were) dead\b|\brather (be dead|die)\b|\bfeel like dying\b|\b(better|easier) (off )?dead\b",
    ),
    (
        "direct.end_life",
        CueKind::Direct,
        true,
        "ending one's life",
        r"\bend(ing)?\s+(my|it)\s+(own\s+)?(life|all)\b|\bend(ing)? it all\b|\btak(e|ing) my (own )?life\b|\bplan (to|for how to) end it\b|\bend my life\b",
    ),
    (
        "direct.not_live",
        CueKind::Direct,
        false,
        "not wanting to live",
        r"\b(don'?t|do not|no longer) want to (live|be alive|exist)\b|\b(tired|sick) of (living|being alive)\b|\bcan'?t go on living\b|\b(not|isn'?t|is not) worth living\b|\b(no|any|the) (point|reason) (of|in|to) (living|being alive|live)\b|\bstop existing\b",
    ),
    (
        "direct.method",
        CueKind::Direct,
        true,
        "a method or means",
        r"\boverdos\w*|\bhow many pills\b|\bpills (saved|stockpiled)|\b(saved|stockpiled|stockpiling|hoarding) (up )?(pills|meds|medication)\b|\bways to die\b|\bhow to (die|kill myself)\b|\bjump(ing)? (off|from) (a|the|my) (bridge|building|roof|cliff|balcony)\b|\bjump(ing)? in front of (a|the) (train|bus|car|truck)\b|\bdrive (my car )?off (the road|a cliff|a bridge)\b",
    ),
    (
        "direct.plan_time",
        CueKind::Direct,
        false,
        "a time set for it",
        r"\btonight is the night\b",
    ),
    (
        "indirect.better_off_without",
        CueKind::Indirect,
        false,
        "others better off without them",
        r"\bbetter (off|place|world)( if i)? without me\b|\b(better|happier|easier|relieved)\b[^.!?]{0,40}\bif i (just )?(was|were|wasn'?t|weren'?t) (here|around|alive|gone|dead)\b",
    ),
    (
        "indirect.disappear",
        CueKind::Indirect,
        false,
        "disappearing for good",
        r"\bdisappear(ing)? (for good|forever|permanently|and never come back)\b",
    ),
    (
        "indirect.giving_away",
        CueKind::Indirect,
        false,
        "giving possessions away",
        r"\bgiv(e|ing|en) (away )?(all )?my (things|stuff|belongings|possessions)\b|\bgave (away )?(my|all my) (things|stuff|belongings|possessions)\b|\bwon'?t need to (look after|take care of)\b",
    ),
    (
        "indirect.not_around",
        CueKind::Indirect,
        false,
        "not being around much longer",
        r"\bbe (around|here|alive) (much longer|for (much )?longer|next (week|month|year)|to see)\b|\bwon'?t be (a problem|a burden) for anyone\b|\b(should|could) (just )?not be here\b|\bnot be here anymore\b",
    ),
    (
        "indirect.sleep_forever",
        CueKind::Indirect,
        false,
        "sleeping and not waking up",
        r"\b(sleep|asleep) forever\b|\b(and )?(never|not) wake up\b|\bdon'?t want to wake up\b",
    ),
    (
        "indirect.not_exist",
        CueKind::Indirect,
        false,
        "wishing not to exist",
        r"\b(wish|want) (i could )?(just )?not (to )?exist\b|\bwant it (all )?to (be over|end)\b|\bwaiting for it (all )?to end\b|\bmake it end\b",
    ),
    (
        "indirect.no_one_miss",
        CueKind::Indirect,
        false,
        "no one missing them when gone",
        r"\b(miss|notice|care about) me when i'?m gone\b|\bwhen i'?m (gone|dead)\b",
    ),
    (
        "indirect.burden",
        CueKind::Indirect,
        false,
        "feeling a burden",
        r"\b(i'?m|i am|being|like i'?m|like) (a|such a) burden\b",
    ),
    (
        "indirect.goodbye",
        CueKind::Indirect,
        false,
        "goodbyes and final arrangements",
        r"\b(said|saying|say) (my )?goodbyes?\b|\blast message\b|\bwasn'?t (their|your) fault\b|\baffairs in order\b|\bupdated? my will\b|\bmade (my )?peace with it\b|\bknow what i (need|have) to do\b|\bdecided (tonight|today|this) is the end\b|\btonight is the end\b",
    ),
    (
        "indirect.no_way_out",
        CueKind::Indirect,
        false,
        "no way out, no future",
        r"\bno way out\b|\b(none of this|it) (won'?t|will not) (matter|be my problem)\b|\bnone of this will be my problem\b|\bcan'?t see (a|any) future\b|\bno future for me\b|\bno reason (for me )?to (keep going|go on|live|stay)\b|\bpain to stop (for good|forever)\b|\bstop the pain (for good|forever)\b",
    ),
];

/// (id, pattern): phrases that look like a cue and are not one.
const IDIOMS: &[(&str, &str)] = &[
    (
        "idiom.suicide_topic",
        r"\bsuicide (prevention|hotline|helpline|awareness|rates?|statistics|policy|research|squad)\b|\b(novel|book|film|movie|essay|article|story|documentary|show|paper|case|investigat\w*) (about |into |on )?(a |the )?suicide\b|\bsuicide (in|of) (the )?(novel|book|film|movie|play)\b",
    ),
    (
        "idiom.accident",
        r"\b(cut|burn|burned|burnt|hurt) myself (shaving|cooking|on (the|a|my) (stove|oven|knife|paper|glass|pan))\b|\b(cut|burn|burned|burnt|hurt) myself (by accident|accidentally)\b|\baccidentally (cut|burn|burned|burnt|hurt) myself\b",
    ),
    (
        "idiom.die_for",
        r"\b(die|dying) (for|to know|to see|to try|of (embarrassment|laughter|boredom|shame))\b",
    ),
];

/// Words that, just before a negatable cue, suppress it.
const NEGATORS: &[&str] = &["never", "not", "won't", "wouldn't", "no", "nor", "without"];

/// The default cue rules, compiled.
pub fn default_cues() -> Vec<CueRule> {
    CUES.iter()
        .filter_map(|(id, kind, negatable, describes, pat)| {
            Regex::new(pat).ok().map(|regex| CueRule {
                id,
                kind: *kind,
                describes,
                negatable: *negatable,
                regex,
            })
        })
        .collect()
}

/// The default look-alike rules, compiled.
pub fn default_idioms() -> Vec<IdiomRule> {
    IDIOMS
        .iter()
        .filter_map(|(id, pat)| Regex::new(pat).ok().map(|regex| IdiomRule { id, regex }))
        .collect()
}

/// True when one of the `window` words before byte `start` of `text` negates.
pub fn negated_before(text: &str, start: usize, window: usize) -> Option<&'static str> {
    let before = text.get(..start)?;
    // A clause boundary ends the negation's reach.
    let clause = before
        .rsplit(['.', '!', '?', ',', ';', ':'])
        .next()
        .unwrap_or(before);
    let words: Vec<&str> = clause.split_whitespace().collect();
    let from = words.len().saturating_sub(window);
    words[from..].iter().find_map(|w| {
        let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        NEGATORS
            .iter()
            .find(|n| **n == w || (n.ends_with("n't") && w == n.replace('\'', "")))
            .copied()
    })
}

/// Lowercase, straight apostrophes, one space between words. Byte offsets of matches refer to
/// this form, which is what reasons quote.
pub fn normalize(text: &str) -> String {
    let lower = text
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}', '`'], "'");
    lower.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles() {
        assert_eq!(default_cues().len(), CUES.len());
        assert_eq!(default_idioms().len(), IDIOMS.len());
    }

    #[test]
    fn negation_looks_back_within_the_clause() {
        let t = "i would never kill myself";
        let start = t.find("kill").unwrap_or(0);
        assert_eq!(negated_before(t, start, 4), Some("never"));
        let t = "no, i want to kill myself";
        let start = t.find("kill").unwrap_or(0);
        assert_eq!(negated_before(t, start, 4), None);
    }
}
