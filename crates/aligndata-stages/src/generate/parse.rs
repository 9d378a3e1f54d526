//! Turning a model's raw output into one user message, or a reason it is not one.
//!
//! Models wrap what we asked for: "Sure! Here is a message:" preambles, quotes, numbered lists,
//! "Message:" labels, echoed tags, closing notes; they refuse; they stop mid-sentence at the
//! token limit. Each case is handled and *counted* (`fixes` on success, a reject reason on
//! failure), because the counts say how well a backend follows the prompt.

use std::sync::LazyLock;

use regex::Regex;

use aligndata_models::llm::count_words as words;

/// What parsing made of one output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A usable message, and the repairs applied (`preamble`, `quotes`, `list`, ...).
    Text {
        /// The message.
        text: String,
        /// Repairs, in the order applied.
        fixes: Vec<&'static str>,
    },
    /// Not usable: a flag kind (`empty`, `refusal`, `truncated`, `too-short`) and why.
    Reject {
        /// The flag kind.
        kind: &'static str,
        /// Human reason.
        reason: String,
    },
}

static PREAMBLE_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(sure|certainly|of course|absolutely|okay|ok|here is|here's|here are|below is)\b[^\n]{0,120}?(:|!|\.)\s*$").expect("static regex")
});
static PREAMBLE_INLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*((sure|certainly|of course|absolutely)[!,.]?\s*)?(here is|here's|below is)\b[^:\n]{0,100}:\s*").expect("static regex")
});
static LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*(message|user|user message|text|input)\s*:\s*").expect("static regex")
});
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*\[[^\]\n]{0,200}\]\s*").expect("static regex"));
static LIST_ITEM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(\d{1,3}[.)]|[-*•])\s+").expect("static regex"));
static REFUSAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(\bas an ai\b|\bi (can(no|')t|am unable to|won'?t|'?m not able to) (assist|comply|fulfil|provide|create|generate|write that|write this|do that|help with (that|this)|help you with))").expect("static regex")
});
static TRAILER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\s*\(?(note|this message|i hope this|let me know|feel free)\b")
        .expect("static regex")
});

const QUOTES: [(char, char); 4] = [('"', '"'), ('“', '”'), ('\'', '\''), ('«', '»')];

/// Parses `raw`. `truncated` is true when the backend stopped at its token limit.
pub fn parse_output(raw: &str, truncated: bool) -> Parsed {
    let mut fixes = Vec::new();
    let mut text = raw.replace("\r\n", "\n").trim().to_string();
    if text.is_empty() {
        return Parsed::Reject {
            kind: "empty",
            reason: "the model returned nothing".into(),
        };
    }
    let head: String = text.chars().take(200).collect();
    if REFUSAL.is_match(&head) {
        return Parsed::Reject {
            kind: "refusal",
            reason: format!("the model refused: {}", excerpt(&text)),
        };
    }
    if let Some(m) = TAG.find(&text) {
        text = text[m.end()..].to_string();
        fixes.push("tag-echo");
    }
    // A preamble on its own line, or inline before a colon.
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.len() > 1 && PREAMBLE_LINE.is_match(lines[0]) {
        lines.remove(0);
        fixes.push("preamble");
        text = lines.join("\n").trim().to_string();
    } else if let Some(m) = PREAMBLE_INLINE.find(&text) {
        text = text[m.end()..].to_string();
        fixes.push("preamble");
    }
    // A list: keep the first item.
    let trimmed: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if trimmed.len() > 1 && trimmed.iter().filter(|l| LIST_ITEM.is_match(l)).count() >= 2 {
        if let Some(first) = trimmed.iter().find(|l| LIST_ITEM.is_match(l)) {
            text = LIST_ITEM.replace(first, "").to_string();
            fixes.push("list");
        }
    } else if trimmed.len() == 1 && LIST_ITEM.is_match(&text) {
        text = LIST_ITEM.replace(&text, "").to_string();
        fixes.push("list");
    }
    if let Some(m) = LABEL.find(&text) {
        text = text[m.end()..].to_string();
        fixes.push("label");
    }
    // Closing notes after the message.
    let kept: Vec<&str> = text.split("\n\n").collect();
    if kept.len() > 1 {
        let n = kept
            .iter()
            .position(|p| TRAILER.is_match(p))
            .unwrap_or(kept.len());
        if n > 0 && n < kept.len() {
            text = kept[..n].join("\n\n");
            fixes.push("trailer");
        }
    }
    text = text.trim().to_string();
    for (open, close) in QUOTES {
        if text.chars().count() >= 2 && text.starts_with(open) && text.ends_with(close) {
            let inner = &text[open.len_utf8()..text.len() - close.len_utf8()];
            if !inner.contains(open) || open != close {
                text = inner.trim().to_string();
                fixes.push("quotes");
                break;
            }
        }
    }
    if truncated {
        // Cut back to the last sentence end; an unfinished single sentence is rejected.
        match text.rfind(['.', '!', '?']) {
            Some(i) if i + 1 < text.len() && words(&text[..=i]) >= 3 => {
                text.truncate(i + 1);
                fixes.push("truncated-trimmed");
            }
            Some(i) if i + 1 >= text.len() => {}
            _ => {
                return Parsed::Reject {
                    kind: "truncated",
                    reason: format!(
                        "cut off at the token limit with no complete sentence: {}",
                        excerpt(&text)
                    ),
                };
            }
        }
    }
    text = text.trim().to_string();
    if text.is_empty() {
        return Parsed::Reject {
            kind: "empty",
            reason: "nothing left after removing the wrapping".into(),
        };
    }
    if words(&text) < 3 {
        return Parsed::Reject {
            kind: "too-short",
            reason: format!("fewer than 3 words: {}", excerpt(&text)),
        };
    }
    Parsed::Text { text, fixes }
}

/// For continuation output: the first non-empty line, and whether more lines followed it (one
/// line is one message there; a model that keeps going has started the next one).
pub fn first_line(raw: &str) -> (&str, bool) {
    let mut lines = raw.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or("");
    (first, lines.next().is_some())
}

/// Words a line needs to be taken as the message rather than a title (see [`message_line`]).
pub const MESSAGE_MIN_WORDS: u32 = 3;

/// Like [`first_line`], but a short first line (under 3 words) followed by a real one is taken
/// as a title and skipped: small models often open a post with a heading ("Abusive Romance",
/// then the message). Returns the line, whether more lines followed it, and whether a title was
/// skipped. Without this, such attempts were rejected as too short and paid for again.
pub fn message_line(raw: &str) -> (&str, bool, bool) {
    let lines: Vec<&str> = raw
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match lines
        .iter()
        .position(|l| words(l) >= MESSAGE_MIN_WORDS as usize)
    {
        Some(i) if i > 0 => (lines[i], lines.len() > i + 1, true),
        _ => {
            let (line, more) = first_line(raw);
            (line, more, false)
        }
    }
}

/// The first 80 characters, for reasons.
pub fn excerpt(s: &str) -> String {
    let one_line = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut e: String = one_line.chars().take(80).collect();
    if one_line.chars().count() > 80 {
        e.push('…');
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(raw: &str, truncated: bool) -> (String, Vec<&'static str>) {
        match parse_output(raw, truncated) {
            Parsed::Text { text, fixes } => (text, fixes),
            other => panic!("{raw:?} → {other:?}"),
        }
    }

    fn rejected(raw: &str, truncated: bool) -> &'static str {
        match parse_output(raw, truncated) {
            Parsed::Reject { kind, .. } => kind,
            other => panic!("{raw:?} → {other:?}"),
        }
    }

    #[test]
    fn plain_text_passes_untouched() {
        assert_eq!(
            ok("I keep redoing my slides.", false),
            ("I keep redoing my slides.".into(), vec![])
        );
    }

    #[test]
    fn preambles() {
        let (t, f) = ok(
            "Sure! Here is a message:\n\nI can't stop checking my email.",
            false,
        );
        assert_eq!(t, "I can't stop checking my email.");
        assert_eq!(f, vec!["preamble"]);
        let (t, f) = ok(
            "Here's a realistic message: \"my boss hates me i think\"",
            false,
        );
        assert_eq!(t, "my boss hates me i think");
        assert_eq!(f, vec!["preamble", "quotes"]);
    }

    #[test]
    fn lists_quotes_labels_tags_trailers() {
        let (t, f) = ok(
            "1. I failed again and everyone saw.\n2. Another one here.\n3. Third.",
            false,
        );
        assert_eq!(t, "I failed again and everyone saw.");
        assert_eq!(f, vec!["list"]);
        let (t, _) = ok("“Why do I always freeze when people look at me?”", false);
        assert_eq!(t, "Why do I always freeze when people look at me?");
        let (t, f) = ok(
            "Message: nobody replied to my story and I feel stupid",
            false,
        );
        assert_eq!(t, "nobody replied to my story and I feel stupid");
        assert_eq!(f, vec!["label"]);
        let (t, f) = ok("[fear | exams | anxious] what if I fail tomorrow", false);
        assert_eq!(t, "what if I fail tomorrow");
        assert_eq!(f, vec!["tag-echo"]);
        let (t, f) = ok(
            "I never finish anything I start.\n\nNote: this message shows perfectionism.",
            false,
        );
        assert_eq!(t, "I never finish anything I start.");
        assert_eq!(f, vec!["trailer"]);
    }

    #[test]
    fn refusals_but_not_user_voice() {
        assert_eq!(
            rejected("I'm sorry, but I can't help with that request.", false),
            "refusal"
        );
        assert_eq!(
            rejected("As an AI, I don't have feelings, but here is", false),
            "refusal"
        );
        ok("I can't stop thinking I'm a fraud at work.", false);
        ok("I'm sorry but I just feel like I ruin everything.", false);
    }

    #[test]
    fn truncation_empty_short() {
        let (t, f) = ok(
            "I studied all week. Then I blanked on the first question and I just kept",
            true,
        );
        assert_eq!(t, "I studied all week.");
        assert_eq!(f, vec!["truncated-trimmed"]);
        assert_eq!(
            rejected("I studied all week and then on the day of the", true),
            "truncated"
        );
        ok("Everything went wrong today.", true);
        assert_eq!(rejected("   ", false), "empty");
        assert_eq!(rejected("ok thanks", false), "too-short");
        assert_eq!(
            first_line("\n\n  my first line \nsecond"),
            ("my first line", true)
        );
        assert_eq!(first_line("only"), ("only", false));
        assert_eq!(
            message_line("\n\nAbusive Romance\n\nI just don't know what to do.\nmore"),
            ("I just don't know what to do.", true, true)
        );
        assert_eq!(message_line("ok\nfine"), ("ok", true, false));
        assert_eq!(
            message_line("A whole message here.\nnext"),
            ("A whole message here.", true, false)
        );
    }
}
