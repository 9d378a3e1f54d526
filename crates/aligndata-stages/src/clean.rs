//! Cleaning: normalise real text, identify its language, and apply quality rules.
//!
//! Why it looks like this:
//! - **Set aside, never drop.** Every rule that fires adds a named flag with a reason
//!   (`too_short`, `too_long`, `mostly_symbols`, `repeated_lines`, `repeated_chars`,
//!   `repeated_words`, `boilerplate`, `empty_after_cleaning`, `language`); the record stays in the
//!   dataset and a reviewer can see why it was set aside. A `quality` score in [0, 1] with its
//!   components in the reason ranks what was kept.
//! - **NFKC, not NFC.** Compatibility folding turns full-width letters and digits
//!   (`ｊｏｈｎ＠ｇｍａｉｌ．ｃｏｍ`, `５５５`), ligatures and non-breaking spaces into their plain forms.
//!   That makes the PII rules and the dedup hash see what a reader sees, at the cost of
//!   typography that does not matter for support-forum text (`²` → `2`, `…` → `...`).
//!   Zero-width characters and soft hyphens are removed too: they can hide an email from a regex.
//! - **Order, so nothing is counted twice.** `clean` strips markup *before* PII scrubbing:
//!   a markdown link `[text](url)` or `<a href=url>text</a>` becomes `text` (the link target is
//!   markup, counted in `CleanCounts::links_stripped`), while a bare URL in prose stays for
//!   `pii::scrub` to replace by `[URL]` (counted there). Rules measure the *content*: words that
//!   are not URLs, emails, handles or placeholders, so they give the same answer whether PII
//!   scrubbing ran before or after.
//! - **Language only where it can be trusted.** whatlang guesses on any input; on a few words
//!   the guess is noise. Below `lang_min_letters` letters, or below `lang_min_confidence`, the
//!   language is `und` and nothing is flagged, except when the *script* alone rules out every
//!   kept language (Cyrillic text with an English keep-list). A cheap English fast path (share of
//!   English function words) skips whatlang for most English posts; whatlang sees at most the
//!   first `LANG_SAMPLE_BYTES` of content.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use unicode_normalization::UnicodeNormalization;

use aligndata_core::Record;

/// Flag kinds set by `clean`.
pub mod flags {
    /// Fewer content characters than `min_chars`.
    pub const TOO_SHORT: &str = "too_short";
    /// More characters than `max_chars`.
    pub const TOO_LONG: &str = "too_long";
    /// Letters are less than `min_letter_share` of the non-space content characters.
    pub const MOSTLY_SYMBOLS: &str = "mostly_symbols";
    /// Most non-empty lines are repeats of other lines.
    pub const REPEATED_LINES: &str = "repeated_lines";
    /// One character repeated `max_char_run` times or more in a row.
    pub const REPEATED_CHARS: &str = "repeated_chars";
    /// One word makes up most of a longer text.
    pub const REPEATED_WORDS: &str = "repeated_words";
    /// Deleted/removed markers and bot messages.
    pub const BOILERPLATE: &str = "boilerplate";
    /// Nothing left after normalisation and markup stripping.
    pub const EMPTY_AFTER_CLEANING: &str = "empty_after_cleaning";
    /// Detected language not on the keep-list.
    pub const LANGUAGE: &str = "language";
}

/// The score name set by `clean`.
pub const QUALITY_SCORE: &str = "quality";

/// At most this many bytes of content go to whatlang: a post's language is settled by its start.
pub const LANG_SAMPLE_BYTES: usize = 300;

/// Cleaning settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CleanConfig {
    /// Languages to keep, ISO 639-1 (`en`) or 639-3 (`eng`); empty keeps all and skips detection.
    pub languages: Vec<String>,
    /// Fewer content characters than this → `too_short`.
    pub min_chars: usize,
    /// More characters than this → `too_long`.
    pub max_chars: usize,
    /// Letters below this share of non-space content characters → `mostly_symbols`.
    pub min_letter_share: f64,
    /// Language is identified only on content with at least this many letters.
    pub lang_min_letters: usize,
    /// whatlang confidence below this → language unknown, not flagged.
    pub lang_min_confidence: f64,
    /// A run of one character this long → `repeated_chars`.
    pub max_char_run: usize,
    /// Share of non-empty lines that repeat an earlier line at or above which → `repeated_lines`.
    pub max_repeated_line_share: f64,
}

impl Default for CleanConfig {
    fn default() -> Self {
        CleanConfig {
            languages: vec!["en".to_string()],
            min_chars: 12,
            max_chars: 20_000,
            min_letter_share: 0.5,
            lang_min_letters: 40,
            lang_min_confidence: 0.5,
            max_char_run: 20,
            max_repeated_line_share: 0.5,
        }
    }
}

/// What cleaning did over a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CleanCounts {
    /// Records cleaned.
    pub records: u64,
    /// Records whose text normalisation changed.
    pub changed: u64,
    /// Records that had HTML or markdown markup removed.
    pub markup_stripped: u64,
    /// Link targets removed with their markup (`[text](url)`, `<a href>`); bare URLs are PII's.
    pub links_stripped: u64,
    /// Records per flag kind set here.
    pub flags: BTreeMap<String, u64>,
    /// Records per identified language (ISO 639-1; `und` when not trusted or not run).
    pub languages: BTreeMap<String, u64>,
}

impl CleanCounts {
    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &CleanCounts) {
        self.records += other.records;
        self.changed += other.changed;
        self.markup_stripped += other.markup_stripped;
        self.links_stripped += other.links_stripped;
        for (k, v) in &other.flags {
            *self.flags.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.languages {
            *self.languages.entry(k.clone()).or_default() += v;
        }
    }
}

/// Joins a Reddit-style title and body into one text: the title as its own paragraph, then the
/// body. An empty part (or a `[deleted]`/`[removed]` body) is left out, so a title-only post is
/// its title.
pub fn join_title_body(title: &str, body: &str) -> String {
    let title = title.trim();
    let body = body.trim();
    let body_gone = matches!(body, "[deleted]" | "[removed]");
    match (
        title.is_empty(),
        body.is_empty() || body_gone && !title.is_empty(),
    ) {
        (true, _) => body.to_string(),
        (false, true) => title.to_string(),
        (false, false) => format!("{title}\n\n{body}"),
    }
}

/// Cleans `record` in place: normalises its text, then flags it by the rules and language
/// keep-list and sets its `quality` score. The record's id is left as ingest computed it.
pub fn clean(record: &mut Record, config: &CleanConfig, counts: &mut CleanCounts) {
    counts.records += 1;
    let normal = normalize(&record.text);
    if normal.markup {
        counts.markup_stripped += 1;
    }
    counts.links_stripped += normal.links;
    if normal.text != record.text {
        counts.changed += 1;
        record.text = normal.text;
    }
    let mut fired: Vec<(&'static str, String)> = Vec::new();
    let verdict = assess(&record.text, config, &mut fired);
    if let Some(lang) = &verdict.language {
        *counts.languages.entry(lang.clone()).or_default() += 1;
    }
    for (kind, reason) in fired {
        if !record.flags.iter().any(|f| f.kind == kind) {
            *counts.flags.entry(kind.to_string()).or_default() += 1;
        }
        record.flag(kind, reason);
    }
    record.set_score(QUALITY_SCORE, verdict.quality, verdict.quality_reason);
}

/// Normalised text and what normalisation removed.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalized {
    /// The text after NFKC, markup stripping and whitespace collapse.
    pub text: String,
    /// Whether HTML or markdown markup was removed.
    pub markup: bool,
    /// Link targets removed with their markup.
    pub links: u64,
}

/// NFKC, invisible characters removed, markup stripped (HTML tags, comments, entities, markdown
/// links/images/bold), whitespace collapsed with paragraph breaks kept.
pub fn normalize(text: &str) -> Normalized {
    let mut markup = false;
    let mut links = 0u64;
    let mut s: Cow<'_, str> = Cow::Borrowed(text);
    if s.contains('\r') {
        s = Cow::Owned(s.replace("\r\n", "\n").replace('\r', "\n"));
    }
    if !s.is_ascii() {
        let folded: String = s.nfkc().filter(|&c| !is_invisible(c)).collect();
        s = Cow::Owned(folded);
    }
    if s.contains('<') {
        let before = s.len();
        let a_links = HTML_A.find_iter(&s).count() as u64;
        let t = HTML_DROP_BLOCK.replace_all(&s, "");
        let t = HTML_COMMENT.replace_all(&t, "");
        let t = HTML_TAG.replace_all(&t, |caps: &regex::Captures<'_>| {
            let name = caps.get(1).map_or("", |m| m.as_str()).to_ascii_lowercase();
            if BLOCK_TAGS.contains(&name.as_str()) {
                "\n"
            } else {
                ""
            }
        });
        if t.len() != before {
            markup = true;
            links += a_links;
            s = Cow::Owned(t.into_owned());
        }
    }
    if s.contains("](") {
        let n = MD_LINK.find_iter(&s).count() as u64;
        if n > 0 {
            markup = true;
            links += n;
            s = Cow::Owned(MD_LINK.replace_all(&s, "$1").into_owned());
        }
    }
    if s.contains("**") || s.contains("~~") {
        let t = MD_EMPHASIS.replace_all(&s, "$2");
        if t.len() != s.len() {
            markup = true;
            s = Cow::Owned(t.into_owned());
        }
    }
    if s.contains('&') {
        let t = ENTITY.replace_all(&s, |caps: &regex::Captures<'_>| decode_entity(&caps[0]));
        if t.len() != s.len() {
            markup = true;
            s = Cow::Owned(t.into_owned());
        }
    }
    Normalized {
        text: collapse_whitespace(&s),
        markup,
        links,
    }
}

fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    ) || c.is_control() && c != '\n' && c != '\t'
}

/// Runs of spaces/tabs → one space; lines trimmed; more than one blank line → one; text trimmed.
fn collapse_whitespace(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank_run = 0usize;
    for line in s.split('\n') {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        let mut first = true;
        for w in words {
            if !first {
                out.push(' ');
            }
            out.push_str(w);
            first = false;
        }
    }
    out
}

static HTML_DROP_BLOCK: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?is)<(script|style)(?-u:\b)[^>]*>.*?</(?:script|style)\s*>"));
static HTML_COMMENT: LazyLock<Regex> = LazyLock::new(|| re(r"(?s)<!--.*?-->"));
// Only known HTML tag names: "<3", "a < b" and "<insert name here>" are not markup.
static HTML_TAG: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)</?(a|abbr|b|big|blockquote|br|center|code|del|div|em|font|h[1-6]|hr|i|img|ins|li|mark|ol|p|pre|s|small|span|strike|strong|sub|sup|table|tbody|td|th|thead|tr|tt|u|ul)(?-u:\b)[^<>]*/?>",
    )
});
static HTML_A: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)<a\s[^<>]*href"));
const BLOCK_TAGS: &[&str] = &[
    "br",
    "p",
    "div",
    "li",
    "ul",
    "ol",
    "tr",
    "table",
    "blockquote",
    "pre",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
];
// Markdown link or image whose target looks like a link: `[text](http…)`, `![alt](/path)`.
static MD_LINK: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"!?\[([^\[\]\n]*)\]\((?:https?://|www\.|/|mailto:|#)[^()\s]*(?:\([^()\s]*\)[^()\s]*)*(?:\s+"[^"]*")?\)"#,
    )
});
static MD_EMPHASIS: LazyLock<Regex> = LazyLock::new(|| re(r"(\*\*|~~)([^*~\n]+?)(?:\*\*|~~)"));
static ENTITY: LazyLock<Regex> =
    LazyLock::new(|| re(r"&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]{2,8});"));

fn decode_entity(e: &str) -> String {
    let body = &e[1..e.len() - 1];
    let named = match body {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "ndash" => Some('–'),
        "mdash" => Some('—'),
        "hellip" => Some('…'),
        "rsquo" | "lsquo" => Some('\''),
        "rdquo" | "ldquo" => Some('"'),
        _ => None,
    };
    let c = named.or_else(|| {
        let num = body.strip_prefix('#')?;
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => num.parse().ok()?,
        };
        char::from_u32(code).filter(|c| !is_invisible(*c) || *c == '\n')
    });
    match c {
        Some(c) => c.to_string(),
        None => e.to_string(),
    }
}

/// Compiles a regex written in this file. Every pattern is a literal exercised by the unit
/// tests, so a failure is a programming error, not something input can cause.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("cleaning pattern is a literal checked by tests")
}

static BOILERPLATE_WHOLE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)^\s*\[?\s*(?:deleted|removed)(?:\s+by\s+(?:user|reddit|moderators?|mods?|the\s+author))?\s*\]?\s*\.?\s*$",
    )
});
static BOILERPLATE_ANY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?-u:\b)(?:i\s+am\s+a\s+bot(?-u:\b)|i'm\s+a\s+bot(?-u:\b)|this\s+action\s+was\s+performed\s+automatically|beep\s+boop|contact\s+the\s+moderators\s+of\s+this\s+subreddit|(?:your|this)\s+(?:post|comment|submission)\s+has\s+been\s+(?:removed|automatically\s+removed)|i\s+am\s+a\s+bot,?\s+and|automoderator)",
    )
});

struct Verdict {
    language: Option<String>,
    quality: f64,
    quality_reason: String,
}

/// Runs the rules on normalised `text`; pushes (flag, reason) for each that fires.
fn assess(text: &str, config: &CleanConfig, fired: &mut Vec<(&'static str, String)>) -> Verdict {
    if text.trim().is_empty() {
        fired.push((
            flags::EMPTY_AFTER_CLEANING,
            "no text left after normalisation and markup stripping".into(),
        ));
        return Verdict {
            language: None,
            quality: 0.0,
            quality_reason: "empty".into(),
        };
    }
    let content = Content::of(text);
    let total_chars = text.chars().count();

    let mut boiler = None;
    if let Some(m) = BOILERPLATE_WHOLE
        .find(text)
        .or_else(|| BOILERPLATE_ANY.find(text))
    {
        boiler = Some(m.as_str().trim().to_string());
        fired.push((
            flags::BOILERPLATE,
            format!("matches boilerplate {:?}", m.as_str().trim()),
        ));
    }
    if content.chars < config.min_chars {
        fired.push((
            flags::TOO_SHORT,
            format!(
                "{} content characters (URLs, emails, handles and placeholders not counted) < {}",
                content.chars, config.min_chars
            ),
        ));
    }
    if total_chars > config.max_chars {
        fired.push((
            flags::TOO_LONG,
            format!("{total_chars} characters > {}", config.max_chars),
        ));
    }
    let letter_share = if content.nonspace == 0 {
        0.0
    } else {
        content.letters as f64 / content.nonspace as f64
    };
    if content.nonspace > 0 && letter_share < config.min_letter_share {
        fired.push((
            flags::MOSTLY_SYMBOLS,
            format!(
                "letters are {:.2} of non-space characters (< {:.2})",
                letter_share, config.min_letter_share
            ),
        ));
    }
    let (dup_lines, lines) = repeated_lines(text);
    let dup_share = if lines == 0 {
        0.0
    } else {
        dup_lines as f64 / lines as f64
    };
    if lines >= 2 && dup_share >= config.max_repeated_line_share {
        fired.push((
            flags::REPEATED_LINES,
            format!("{dup_lines} of {lines} non-empty lines repeat an earlier line"),
        ));
    }
    let (run_char, run) = longest_run(text);
    if run >= config.max_char_run {
        fired.push((
            flags::REPEATED_CHARS,
            format!(
                "{run} × {run_char:?} in a row (limit {})",
                config.max_char_run
            ),
        ));
    }
    let word_rep = repeated_word(&content.words);
    if let Some((word, n)) = &word_rep {
        fired.push((
            flags::REPEATED_WORDS,
            format!("{word:?} is {n} of {} words", content.words.len()),
        ));
    }

    let language = if config.languages.is_empty() {
        None
    } else {
        Some(language(&content, config, fired))
    };

    // Quality: product of components, each in [0, 1].
    let length_q = if total_chars > config.max_chars {
        0.5
    } else {
        (content.chars as f64 / (3 * config.min_chars.max(1)) as f64).min(1.0)
    };
    let letters_q = ((letter_share - 0.3) / 0.4).clamp(0.0, 1.0);
    let mut repetition_q = 1.0 - dup_share;
    if run >= config.max_char_run || word_rep.is_some() {
        repetition_q *= 0.5;
    }
    let boiler_q = if boiler.is_some() { 0.0 } else { 1.0 };
    let quality = (length_q * letters_q * repetition_q * boiler_q).clamp(0.0, 1.0);
    let reason = format!(
        "length {} ({} content chars), letters {} ({} of non-space), repetition {}{}",
        P2(length_q),
        content.chars,
        P2(letters_q),
        P2(letter_share),
        P2(repetition_q),
        if boiler.is_some() {
            ", boilerplate 0"
        } else {
            ""
        }
    );
    Verdict {
        language,
        quality,
        quality_reason: reason,
    }
}

/// Formats a number in [0, 1] with two decimals through integers (float formatting was a
/// visible share of cleaning time on short texts).
struct P2(f64);

impl std::fmt::Display for P2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = (self.0 * 100.0).round().clamp(-1e9, 1e9) as i64;
        let sign = if v < 0 { "-" } else { "" };
        write!(f, "{sign}{}.{:02}", v.abs() / 100, v.abs() % 100)
    }
}

/// The words that count as content, and their sizes.
struct Content<'a> {
    words: Vec<&'a str>,
    /// Characters of content words plus one space between each.
    chars: usize,
    letters: usize,
    nonspace: usize,
}

impl<'a> Content<'a> {
    fn of(text: &'a str) -> Content<'a> {
        let mut words = Vec::new();
        let mut chars = 0;
        let mut letters = 0;
        let mut nonspace = 0;
        for w in text.split_whitespace() {
            if is_non_content(w) {
                continue;
            }
            let (mut n, mut l) = (0, 0);
            for c in w.chars() {
                n += 1;
                if c.is_alphabetic() {
                    l += 1;
                }
            }
            chars += n + usize::from(!words.is_empty());
            letters += l;
            nonspace += n;
            words.push(w);
        }
        Content {
            words,
            chars,
            letters,
            nonspace,
        }
    }
}

/// URLs, emails, @handles and `[PLACEHOLDER]`s: not the writer's words.
fn is_non_content(w: &str) -> bool {
    let core = w.trim_matches(|c: char| {
        matches!(
            c,
            '(' | ')' | ',' | '.' | '!' | '?' | ';' | ':' | '"' | '\''
        )
    });
    if core.contains("://") || core.starts_with("www.") || core.starts_with('@') && core.len() > 1 {
        return true;
    }
    if core
        .find('@')
        .is_some_and(|at| at > 0 && core[at..].contains('.'))
    {
        return true;
    }
    let b = core.as_bytes();
    b.len() >= 3
        && b[0] == b'['
        && b[b.len() - 1] == b']'
        && b[1..b.len() - 1]
            .iter()
            .all(|c| c.is_ascii_uppercase() || *c == b'_')
}

fn repeated_lines(text: &str) -> (usize, usize) {
    if !text.contains('\n') {
        return (0, 1);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut dup = 0;
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() {
            continue;
        }
        let l = l.to_lowercase();
        if seen.contains(&l) {
            dup += 1;
        } else {
            seen.push(l);
        }
        if seen.len() > 512 {
            break;
        }
    }
    (dup, dup + seen.len())
}

fn longest_run(text: &str) -> (char, usize) {
    let mut best = (' ', 0);
    let mut prev = None;
    let mut run = 0;
    for c in text.chars() {
        if Some(c) == prev {
            run += 1;
        } else {
            prev = Some(c);
            run = 1;
        }
        if run > best.1 && !c.is_whitespace() {
            best = (c, run);
        }
    }
    best
}

/// A word (≥ 2 letters, case-insensitive) that is more than half of a text of at least 8
/// words: majority vote, then a count; no allocation.
fn repeated_word(words: &[&str]) -> Option<(String, usize)> {
    if words.len() < 8 {
        return None;
    }
    fn key(w: &str) -> &str {
        w.trim_matches(|c: char| !c.is_alphanumeric())
    }
    let same = |a: &str, b: &str| a.len() == b.len() && a.eq_ignore_ascii_case(b);
    let (mut cand, mut votes) = ("", 0usize);
    for w in words {
        let w = key(w);
        if votes == 0 {
            cand = w;
            votes = 1;
        } else if same(w, cand) {
            votes += 1;
        } else {
            votes -= 1;
        }
    }
    if cand.chars().count() < 2 {
        return None;
    }
    let n = words.iter().filter(|w| same(key(w), cand)).count();
    (n * 2 > words.len()).then(|| (cand.to_lowercase(), n))
}

/// English function words that are not also common words in other languages whatlang knows
/// ("a", "me", "no", "in", "on", "an", "at", "de" are left out). Case-insensitive, without allocating.
fn is_english_marker(word: &str) -> bool {
    let mut buf = [0u8; 7];
    let mut n = 0;
    for c in word.chars() {
        let c = if c == '’' { '\'' } else { c };
        if n == buf.len() || !c.is_ascii() {
            return false;
        }
        buf[n] = (c as u8).to_ascii_lowercase();
        n += 1;
    }
    #[rustfmt::skip]
    let hit = matches!(&buf[..n], b"the" | b"and" | b"i" | b"to" | b"of" | b"is" | b"it" | b"that" | b"you" | b"my" | b"was" | b"for" | b"with" | b"but" | b"have" | b"this" | b"be" | b"just" | b"so" | b"they" | b"what" | b"feel" | b"are" | b"not" | b"his" | b"her" | b"she" | b"he" | b"we" | b"your" | b"i'm" | b"don't" | b"it's" | b"can't" | b"been" | b"would" | b"about" | b"like" | b"know" | b"really" | b"when" | b"if" | b"do" | b"how" | b"because" | b"im" | b"dont" | b"can" | b"get" | b"all" | b"out" | b"will" | b"there" | b"their" | b"them" | b"than" | b"then" | b"think" | b"people" | b"why" | b"who" | b"which" | b"could" | b"should" | b"from" | b"by" | b"our" | b"him" | b"one" | b"much" | b"good" | b"love" | b"thanks" | b"thank" | b"lol" | b"yeah" | b"sure" | b"where" | b"some" | b"even" | b"only" | b"never" | b"time" | b"way" | b"make" | b"want" | b"got" | b"going" | b"has" | b"had" | b"were" | b"did" | b"does" | b"any" | b"more" | b"these" | b"those" | b"still" | b"right");
    hit
}

/// Identifies the language of `content`, flags it when it is off the keep-list, and returns
/// the ISO 639-1 code counted (`und` when not trusted).
fn language(
    content: &Content<'_>,
    config: &CleanConfig,
    fired: &mut Vec<(&'static str, String)>,
) -> String {
    let keep_en = config
        .languages
        .iter()
        .any(|l| l.eq_ignore_ascii_case("en") || l.eq_ignore_ascii_case("eng"));
    // Fast path: plenty of English function words.
    if keep_en && content.words.len() >= 4 {
        let marked = content
            .words
            .iter()
            .filter(|w| {
                let w = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’');
                is_english_marker(w)
            })
            .count();
        if marked * 5 >= content.words.len() && content.letters * 10 >= content.nonspace * 7 {
            return "en".into();
        }
    }
    let mut sample = String::with_capacity(LANG_SAMPLE_BYTES + 16);
    for w in &content.words {
        if sample.len() >= LANG_SAMPLE_BYTES {
            break;
        }
        if !sample.is_empty() {
            sample.push(' ');
        }
        sample.push_str(w);
    }
    if content.letters < config.lang_min_letters {
        // Too short for a language guess; the script alone may still rule out every kept one.
        let script = if content.letters >= 3 {
            whatlang::detect_script(&sample)
        } else {
            None
        };
        if let Some(script) = script {
            let any_kept = script
                .langs()
                .iter()
                .any(|l| is_kept(*l, &config.languages));
            if !any_kept {
                fired.push((
                    flags::LANGUAGE,
                    format!(
                        "script {} (no kept language uses it; keep-list {})",
                        script.name(),
                        config.languages.join(",")
                    ),
                ));
            }
        }
        return "und".into();
    }
    match whatlang::detect(&sample) {
        Some(info) if info.confidence() >= config.lang_min_confidence => {
            let code = iso639_1(info.lang());
            if !is_kept(info.lang(), &config.languages) {
                fired.push((
                    flags::LANGUAGE,
                    format!(
                        "detected {code} ({}) with confidence {:.2}; keep-list {}",
                        info.lang().eng_name(),
                        info.confidence(),
                        config.languages.join(",")
                    ),
                ));
            }
            code.to_string()
        }
        _ => "und".into(),
    }
}

fn is_kept(lang: whatlang::Lang, keep: &[String]) -> bool {
    let one = iso639_1(lang);
    let three = lang.code();
    keep.iter()
        .any(|k| k.eq_ignore_ascii_case(one) || k.eq_ignore_ascii_case(three))
}

/// ISO 639-1 code of a whatlang language (whatlang speaks ISO 639-3).
#[rustfmt::skip]
pub fn iso639_1(lang: whatlang::Lang) -> &'static str {
    use whatlang::Lang::*;
    match lang {
        Epo => "eo", Eng => "en", Rus => "ru", Cmn => "zh", Spa => "es", Por => "pt", Ita => "it",
        Ben => "bn", Fra => "fr", Deu => "de", Ukr => "uk", Kat => "ka", Ara => "ar", Hin => "hi",
        Jpn => "ja", Heb => "he", Yid => "yi", Pol => "pl", Amh => "am", Jav => "jv", Kor => "ko",
        Nob => "nb", Dan => "da", Swe => "sv", Fin => "fi", Tur => "tr", Nld => "nl", Hun => "hu",
        Ces => "cs", Ell => "el", Bul => "bg", Bel => "be", Mar => "mr", Kan => "kn", Ron => "ro",
        Slv => "sl", Hrv => "hr", Srp => "sr", Mkd => "mk", Lit => "lt", Lav => "lv", Est => "et",
        Tam => "ta", Vie => "vi", Urd => "ur", Tha => "th", Guj => "gu", Uzb => "uz", Pan => "pa",
        Aze => "az", Ind => "id", Tel => "te", Pes => "fa", Mal => "ml", Ori => "or", Mya => "my",
        Nep => "ne", Sin => "si", Khm => "km", Tuk => "tk", Aka => "ak", Zul => "zu", Sna => "sn",
        Afr => "af", Lat => "la", Slk => "sk", Cat => "ca", Tgl => "tl", Hye => "hy", Cym => "cy",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aligndata_core::SourceKind;

    fn cleaned(text: &str) -> Record {
        let mut r = Record::new(SourceKind::Real, text.to_string());
        clean(&mut r, &CleanConfig::default(), &mut CleanCounts::default());
        r
    }

    fn kinds(r: &Record) -> Vec<&str> {
        r.flags.iter().map(|f| f.kind.as_str()).collect()
    }

    #[test]
    fn patterns_compile() {
        for r in [
            &HTML_DROP_BLOCK,
            &HTML_COMMENT,
            &HTML_TAG,
            &HTML_A,
            &MD_LINK,
            &MD_EMPHASIS,
            &ENTITY,
            &BOILERPLATE_WHOLE,
            &BOILERPLATE_ANY,
        ] {
            let _ = r.is_match("");
        }
    }

    #[test]
    fn normalises_markup_and_whitespace() {
        let n = normalize(
            "I  feel\t<b>so</b> tired &amp; sad<br>see [this post](https://x.com/a) <3\r\n\r\n\r\n\n  next   para ",
        );
        assert_eq!(
            n.text,
            "I feel so tired & sad\nsee this post <3\n\nnext para"
        );
        assert!(n.markup);
        assert_eq!(n.links, 1);
        // NFKC: full-width letters and the non-breaking space fold; zero-width space goes.
        assert_eq!(
            normalize("ｊｏｈｎ＠ｇｍａｉｌ．ｃｏｍ\u{a0}hi\u{200b}!").text,
            "john@gmail.com hi!"
        );
        // "[NAME]" placeholders and "a < b" stay.
        assert_eq!(
            normalize("[NAME] said a < b > c").text,
            "[NAME] said a < b > c"
        );
        // A bare URL is left for PII scrubbing.
        assert_eq!(normalize("see https://x.com/a").text, "see https://x.com/a");
    }

    #[test]
    fn quality_rules_flag_with_reasons() {
        assert!(kinds(&cleaned("ok")).contains(&"too_short"));
        assert!(kinds(&cleaned("[deleted]")).contains(&"boilerplate"));
        assert!(
            kinds(&cleaned(
                "Thanks! I am a bot, and this action was performed automatically."
            ))
            .contains(&"boilerplate")
        );
        assert!(kinds(&cleaned("<p></p>")).contains(&"empty_after_cleaning"));
        assert!(kinds(&cleaned("$$$ 123 456 789 !!! ??? ### %%%")).contains(&"mostly_symbols"));
        assert!(
            kinds(&cleaned("help me please\nhelp me please\nhelp me please"))
                .contains(&"repeated_lines")
        );
        assert!(
            kinds(&cleaned(
                "why won't this stop aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
            ))
            .contains(&"repeated_chars")
        );
        assert!(
            kinds(&cleaned("spam spam spam spam spam spam spam spam eggs"))
                .contains(&"repeated_words")
        );
        let good =
            cleaned("I froze during my presentation today and I keep replaying it in my head.");
        assert!(good.is_kept(), "{:?}", good.flags);
        assert!(good.score(QUALITY_SCORE).unwrap_or(0.0) > 0.9);
        // A URL alone is not content.
        assert!(
            kinds(&cleaned(
                "https://example.com/some/very/long/path/to/a/page"
            ))
            .contains(&"too_short")
        );
    }

    #[test]
    fn language_keep_list() {
        let de = cleaned(
            "Ich habe heute bei meiner Präsentation komplett versagt und kann nicht aufhören, daran zu denken.",
        );
        assert_eq!(kinds(&de), vec!["language"], "{:?}", de.flags);
        assert!(de.flags[0].reason.contains("de (German)"));
        let ru = cleaned("Мне очень грустно");
        assert_eq!(kinds(&ru), vec!["language"]);
        // Short English with a weak guess is not flagged.
        assert!(cleaned("ugh, mondays again").is_kept());
        let mut all = CleanConfig::default();
        all.languages.clear();
        let mut r = Record::new(
            SourceKind::Real,
            "Ich habe heute bei meiner Präsentation komplett versagt.".into(),
        );
        clean(&mut r, &all, &mut CleanCounts::default());
        assert!(r.is_kept());
    }

    #[test]
    fn title_and_body() {
        assert_eq!(
            join_title_body(" Help ", "I can't sleep"),
            "Help\n\nI can't sleep"
        );
        assert_eq!(join_title_body("Help", "[removed]"), "Help");
        assert_eq!(join_title_body("", "body"), "body");
    }
}
