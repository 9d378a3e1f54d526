//! PII scrubbing: personal data in real text is replaced by typed placeholders (`[EMAIL]`,
//! `[PHONE]`, `[URL]`, `[HANDLE]`, `[ADDRESS]`, `[CARD]`, `[ID]`, `[IP]`, `[NAME]`), counted per
//! type.
//!
//! Why it looks like this:
//! - **Rules, not a model.** Structured identifiers (emails, cards, IBANs, IPs, phone numbers)
//!   have shapes and checksums; a rule with a checksum is both faster and more precise than a
//!   tagger. Names are the one type rules catch only partly: we catch them where the text says
//!   so ("my name is …", "my boyfriend …", "Dr. …", a signature at the end) and, elsewhere, only
//!   capitalised words from a small embedded list of unambiguous first names. "I'm Anxious" is
//!   not a name; "Will", "Hope", "May" are names only after a strong cue.
//! - **One pass of candidates, then one resolution.** Every detector proposes spans on the
//!   original text; spans are accepted by priority (URL with a scheme, then email, then ID and
//!   card numbers, …, names last), longer first, never overlapping. So an email inside a URL is
//!   one `[URL]`, the domain inside an email is not also a `[URL]`, and nothing is counted twice.
//! - **Validation after matching.** Cards must pass Luhn and have a card-network prefix; IBANs
//!   must pass ISO 7064 mod 97; IPs must parse; SSNs must be in the issued ranges; phone numbers
//!   need 10–15 digits, or a cue word ("call", "text", "number", …) for bare 7- or 10-digit runs.
//!   That is what keeps dates, times, prices, years, version numbers and counts out.
//! - **Placeholders already present stay.** GoEmotions masks names as `[NAME]`; no detector
//!   matches inside square-bracketed upper-case words.
//! - **Fast.** Regexes are compiled once (`LazyLock`) and a detector runs only when the text has
//!   what it needs (a digit, an `@`, a `.`, a cue word), so most plain sentences cost a few byte
//!   scans plus the name pass.
//!
//! Measured on `test_data/pii/planted.jsonl` by `tests::planted_pii_precision_recall`.

use std::collections::HashSet;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde::ser::SerializeMap;

use aligndata_core::Record;

/// A type of personal data, each with its placeholder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PiiKind {
    /// `[EMAIL]`: addresses, also written as `name [at] host [dot] com`.
    Email,
    /// `[PHONE]`: international, US and UK formats.
    Phone,
    /// `[URL]`: with a scheme, `www.`, or a bare domain with a common TLD.
    Url,
    /// `[HANDLE]`: `@name` and Reddit's `u/name`.
    Handle,
    /// `[ADDRESS]`: number + street name + suffix (plus unit, city/state/ZIP), UK postcodes, PO boxes.
    Address,
    /// `[CARD]`: payment card numbers (Luhn-checked, network prefix).
    Card,
    /// `[ID]`: US SSN, IBAN (mod 97), UK National Insurance, numbers after "passport/ID/licence number".
    Id,
    /// `[IP]`: IPv4 and IPv6 addresses.
    Ip,
    /// `[NAME]`: personal names where a cue or the first-name list makes them detectable.
    Name,
}

impl PiiKind {
    /// Every kind, in a fixed order (the order of counts and tables).
    pub const ALL: [PiiKind; 9] = [
        PiiKind::Email,
        PiiKind::Phone,
        PiiKind::Url,
        PiiKind::Handle,
        PiiKind::Address,
        PiiKind::Card,
        PiiKind::Id,
        PiiKind::Ip,
        PiiKind::Name,
    ];

    /// The placeholder that replaces a match, e.g. `[EMAIL]`.
    pub fn placeholder(self) -> &'static str {
        match self {
            PiiKind::Email => "[EMAIL]",
            PiiKind::Phone => "[PHONE]",
            PiiKind::Url => "[URL]",
            PiiKind::Handle => "[HANDLE]",
            PiiKind::Address => "[ADDRESS]",
            PiiKind::Card => "[CARD]",
            PiiKind::Id => "[ID]",
            PiiKind::Ip => "[IP]",
            PiiKind::Name => "[NAME]",
        }
    }

    /// Lowercase name used in summaries, e.g. `email`.
    pub fn name(self) -> &'static str {
        match self {
            PiiKind::Email => "email",
            PiiKind::Phone => "phone",
            PiiKind::Url => "url",
            PiiKind::Handle => "handle",
            PiiKind::Address => "address",
            PiiKind::Card => "card",
            PiiKind::Id => "id",
            PiiKind::Ip => "ip",
            PiiKind::Name => "name",
        }
    }

    /// The kind whose placeholder is `text` (with brackets), if any.
    pub fn from_placeholder(text: &str) -> Option<PiiKind> {
        PiiKind::ALL.into_iter().find(|k| k.placeholder() == text)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How many replacements of each kind; serialises as `{"email": n, …}` with every kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PiiCounts {
    counts: [u64; 9],
}

impl PiiCounts {
    /// Replacements of `kind`.
    pub fn get(&self, kind: PiiKind) -> u64 {
        self.counts[kind.index()]
    }

    /// Adds `n` replacements of `kind`.
    pub fn add(&mut self, kind: PiiKind, n: u64) {
        self.counts[kind.index()] += n;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &PiiCounts) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
    }

    /// All replacements.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Non-zero counts, in `PiiKind::ALL` order.
    pub fn nonzero(&self) -> impl Iterator<Item = (PiiKind, u64)> + '_ {
        PiiKind::ALL
            .into_iter()
            .map(|k| (k, self.get(k)))
            .filter(|(_, n)| *n > 0)
    }

    /// E.g. `"2 EMAIL, 1 PHONE"`; empty when nothing was replaced.
    pub fn describe(&self) -> String {
        self.nonzero()
            .map(|(k, n)| format!("{n} {}", k.placeholder().trim_matches(['[', ']'])))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl Serialize for PiiCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(PiiKind::ALL.len()))?;
        for kind in PiiKind::ALL {
            map.serialize_entry(kind.name(), &self.get(kind))?;
        }
        map.end()
    }
}

/// One detected span in the original text (byte offsets).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PiiSpan {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// What it is.
    pub kind: PiiKind,
}

/// The score name under which `scrub_record` records what it replaced.
pub const PII_SCORE: &str = "pii.replaced";

/// Replaces every detected span by its placeholder; returns the new text and the counts.
pub fn scrub(text: &str) -> (String, PiiCounts) {
    replace(text, &find(text))
}

fn replace(text: &str, spans: &[PiiSpan]) -> (String, PiiCounts) {
    let mut counts = PiiCounts::default();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for span in spans {
        out.push_str(&text[at..span.start]);
        out.push_str(span.kind.placeholder());
        counts.add(span.kind, 1);
        at = span.end;
    }
    out.push_str(&text[at..]);
    (out, counts)
}

/// Scrubs `record.text` in place. When anything was replaced, sets the score `pii.replaced` to
/// the number of replacements, with the types in its reason, so a reviewer can see why the text
/// holds placeholders. Scrubbed records are kept: scrubbing is not a reason to set one aside.
pub fn scrub_record(record: &mut Record) -> PiiCounts {
    let spans = find(&record.text);
    if spans.is_empty() {
        return PiiCounts::default();
    }
    let (text, counts) = replace(&record.text, &spans);
    if counts.total() > 0 {
        record.text = text;
        record.set_score(
            PII_SCORE,
            counts.total() as f64,
            format!("replaced by typed placeholders: {}", counts.describe()),
        );
    }
    counts
}

/// The spans `scrub` would replace, sorted by start, never overlapping.
pub fn find(text: &str) -> Vec<PiiSpan> {
    let mut cands: Vec<Cand> = Vec::new();
    let bytes = text.as_bytes();
    let has_digit = bytes.iter().any(u8::is_ascii_digit);
    let has_at = bytes.contains(&b'@');
    let has_dot = bytes.contains(&b'.');
    let has_slash = bytes.contains(&b'/');

    if has_dot || has_slash {
        urls(text, &mut cands);
    }
    if has_at {
        emails(text, &mut cands);
    }
    if contains_ascii_ci(bytes, b"at]")
        || contains_ascii_ci(bytes, b"at)")
        || contains_ascii_ci(bytes, b"at}")
        || contains_ascii_ci(bytes, b" dot ")
    {
        obfuscated_emails(text, &mut cands);
    }
    if has_at || has_slash {
        handles(text, &mut cands);
    }
    if has_digit {
        digits(text, &mut cands);
    }
    if bytes.iter().any(u8::is_ascii_uppercase) {
        postcodes_and_ninos(text, &mut cands);
        names(text, &mut cands);
    }
    resolve(cands)
}

/// A proposed span with its priority (higher wins overlaps).
#[derive(Debug, Clone, Copy)]
struct Cand {
    start: usize,
    end: usize,
    kind: PiiKind,
    prio: u8,
}

// Priorities: higher wins an overlap; equal priority → longer wins → earlier wins.
const P_URL_SCHEME: u8 = 90;
const P_EMAIL: u8 = 80;
const P_ID_CUE: u8 = 75;
const P_CARD: u8 = 70;
const P_ID: u8 = 65;
const P_IP: u8 = 60;
const P_URL_BARE: u8 = 55;
const P_PHONE: u8 = 50;
const P_ADDRESS: u8 = 45;
const P_HANDLE: u8 = 40;
const P_NAME_CUE: u8 = 20;
const P_NAME_LIST: u8 = 10;

fn resolve(mut cands: Vec<Cand>) -> Vec<PiiSpan> {
    cands.sort_by(|a, b| {
        b.prio
            .cmp(&a.prio)
            .then((b.end - b.start).cmp(&(a.end - a.start)))
            .then(a.start.cmp(&b.start))
    });
    let mut kept: Vec<PiiSpan> = Vec::with_capacity(cands.len());
    for c in cands {
        if c.start >= c.end || kept.iter().any(|k| c.start < k.end && k.start < c.end) {
            continue;
        }
        kept.push(PiiSpan {
            start: c.start,
            end: c.end,
            kind: c.kind,
        });
    }
    kept.sort_by_key(|s| s.start);
    kept
}

fn push(cands: &mut Vec<Cand>, start: usize, end: usize, kind: PiiKind, prio: u8) {
    cands.push(Cand {
        start,
        end,
        kind,
        prio,
    });
}

fn contains_ascii_ci(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle))
}

/// Compiles a regex written in this file. Every pattern is a literal tested by the unit tests,
/// so a failure here is a programming error, not something input can cause.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("PII pattern is a literal checked by tests")
}

// ---------------------------------------------------------------------------------------------
// URLs, emails, handles

static URL_SCHEME: LazyLock<Regex> =
    LazyLock::new(|| re(r#"(?i)(?-u:\b)(?:(?:https?|ftp)://|www\.)[^\s<>"'`{}|\\^\[\]]+"#));
// Bare domains: lowercase TLDs only (a sentence missing its space, "it.Com", is not a URL) and
// only TLDs that are not also short words ("me", "to", "us", "co" are left out).
static URL_BARE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r#"(?-u:\b)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+(?:com|org|net|edu|gov|io|ly|info|biz|app|tv|gg)(?:\.(?:uk|au|nz|br|mx))?(?-u:\b)(?:/[^\s<>"'`]*)?"#,
    )
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,24}(?-u:\b)")
});
// "name [at] gmail [dot] com", "name (at) gmail.com", "name at gmail dot com".
static EMAIL_OBFUSCATED: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+-]*(?:\s+dot\s+[a-z0-9_%+-]+)*\s*(?:(?:\[at\]|\(at\)|\{at\})\s*[a-z0-9-]+\s*(?:\[dot\]|\(dot\)|\{dot\}|\s+dot\s+|\.)|\s+at\s+[a-z0-9-]+\s+dot\s+)\s*(?:com|net|org|edu|gov|io|co\.uk|co|uk|de|fr|ca|au|info|me|us)(?-u:\b)",
    )
});
static HANDLE_AT: LazyLock<Regex> = LazyLock::new(|| re(r"@[A-Za-z_][A-Za-z0-9_.]{1,29}"));
static HANDLE_REDDIT: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|[^A-Za-z0-9_/])(/?u/[A-Za-z0-9_-]{3,20})(?-u:\b)"));

fn urls(text: &str, cands: &mut Vec<Cand>) {
    for m in URL_SCHEME.find_iter(text) {
        let end = m.start() + trim_url_tail(m.as_str());
        push(cands, m.start(), end, PiiKind::Url, P_URL_SCHEME);
    }
    for m in URL_BARE.find_iter(text) {
        // Not the tail of a word joined by '@' (emails are their own kind) or a file path.
        let before = text[..m.start()].chars().next_back();
        if matches!(before, Some('@' | '.' | '/' | '-' | '_')) {
            continue;
        }
        let end = m.start() + trim_url_tail(m.as_str());
        push(cands, m.start(), end, PiiKind::Url, P_URL_BARE);
    }
}

/// Length of `url` without trailing punctuation that belongs to the sentence; a closing
/// parenthesis stays when the URL opened one.
fn trim_url_tail(url: &str) -> usize {
    let mut end = url.len();
    while let Some(c) = url[..end].chars().next_back() {
        let strip = match c {
            '.' | ',' | ';' | ':' | '!' | '?' | '\'' | '"' | '*' => true,
            ')' => url[..end].matches('(').count() < url[..end].matches(')').count(),
            _ => false,
        };
        if !strip {
            break;
        }
        end -= c.len_utf8();
    }
    end
}

fn emails(text: &str, cands: &mut Vec<Cand>) {
    for m in EMAIL.find_iter(text) {
        push(cands, m.start(), m.end(), PiiKind::Email, P_EMAIL);
    }
}

fn obfuscated_emails(text: &str, cands: &mut Vec<Cand>) {
    for m in EMAIL_OBFUSCATED.find_iter(text) {
        push(cands, m.start(), m.end(), PiiKind::Email, P_EMAIL);
    }
}

fn handles(text: &str, cands: &mut Vec<Cand>) {
    for m in HANDLE_AT.find_iter(text) {
        let before = text[..m.start()].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || matches!(c, '@' | '.' | '_' | '/')) {
            continue;
        }
        let end = m.start() + m.as_str().trim_end_matches('.').len();
        push(cands, m.start(), end, PiiKind::Handle, P_HANDLE);
    }
    for caps in HANDLE_REDDIT.captures_iter(text) {
        if let Some(m) = caps.get(1) {
            push(cands, m.start(), m.end(), PiiKind::Handle, P_HANDLE);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers: cards, IDs, IPs, phones, addresses

static CARD: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u:\b)\d(?:[ -]?\d){12,18}(?-u:\b)"));
static SSN: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u:\b)(\d{3})-(\d{2})-(\d{4})(?-u:\b)"));
static IBAN: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}(?-u:\b)"));
static ID_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?-u:\b)(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?|passport(?:\s+(?:number|no\.?|#))?|(?:national\s+|tax\s+|student\s+|employee\s+|patient\s+|member\s+)?id\s*(?:number|no\.?|#)|(?:student|employee|patient|member)\s+id|driver'?s\s+licen[cs]e(?:\s+(?:number|no\.?|#))?|licen[cs]e\s+(?:number|no\.?|#)|nhs\s+(?:number|no\.?)|medicare\s+(?:number|no\.?)|insurance\s+(?:number|no\.?)|account\s+(?:number|no\.?|#)|routing\s+number|(?:case|claim|policy|reference|ref)\s+(?:number|no\.?|#)|sin\s+number|tfn)\s*(?:is|was|:|#|=)?\s*:?\s*([A-Z]{0,3}-?\d[A-Z0-9]*(?:[ -]\d{2,}[A-Z0-9]*)*)",
    )
});
static IPV4: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?-u:\b)\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?-u:\b)"));
static IPV6: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}"));
static PHONE_INTL: LazyLock<Regex> = LazyLock::new(|| {
    re(r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,5}){1,4}(?-u:\b)")
});
static PHONE_NANP: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?:(?-u:\b)1[ .-]?)?(?:\(\d{3}\)[ .-]?|(?-u:\b)\d{3}[ .-]?)\d{3}[ .-]?\d{4}(?-u:\b)")
});
static PHONE_UK: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:\(0\d{2,4}\)|(?-u:\b)0\d{2,4})[ -]?\d{3,4}[ -]?\d{3,4}(?-u:\b)"));
static PHONE_LOCAL: LazyLock<Regex> = LazyLock::new(|| re(r"(?-u:\b)\d{3}[-.]\d{4}(?-u:\b)"));
// Words that make a bare digit run a phone number when they come shortly before it.
static PHONE_CUE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)(?-u:\b)(?:call|calling|called|text|texting|phone|number|cell|mobile|reach|ring|whatsapp|tel|dial|contact|fax|hotline|line)(?-u:\b)",
    )
});
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:(?-u:\b)(?:Flat|Apt|Apartment|Unit|Suite)\s+[0-9]{1,4}[A-Za-z]?,?\s+)?(?-u:\b)\d{1,5}[A-Za-z]?,?\s+(?:(?:N|S|E|W|NE|NW|SE|SW|North|South|East|West)\.?\s+)?(?:(?:[A-Z][a-z]+|[A-Z]\.|\d{1,3}(?:st|nd|rd|th))\s+){1,3}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Place|Pl|Way|Terrace|Close|Crescent|Parkway|Pkwy|Highway|Hwy|Circle|Cir|Square|Sq|Gardens|Grove|Mews|Row|Walk|Hill)(?-u:\b)\.?(?:,?\s+(?:Apt|Apartment|Unit|Suite|Ste|Flat|#)\.?\s*#?[A-Za-z0-9-]+)?(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?,?\s+(?:[A-Z]{2}\s+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}))?(?:,?\s+[A-Z]{1,2}\d[A-Z\d]?\s\d[A-Z]{2}(?-u:\b))?",
    )
});
// Lowercase addresses ("42 baker street"): only unambiguous suffixes, names checked against
// a stop list after matching ("5 blocks down the road" is not an address).
static ADDRESS_LOWER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?-u:\b)\d{1,5}\s+([a-z]+(?:\s+[a-z]+)?)\s+(?:street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln)(?-u:\b)\.?",
    )
});
static PO_BOX: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)(?-u:\b)p\.?\s?o\.?\s+box\s+\d{1,6}(?-u:\b)"));
static UK_POSTCODE: LazyLock<Regex> = LazyLock::new(|| {
    re(r"(?-u:\b)(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?) \d[ABD-HJLNP-UW-Z]{2}(?-u:\b)")
});
static UK_NINO: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?-u:\b)[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?-u:\b)"));

fn digits(text: &str, cands: &mut Vec<Cand>) {
    for m in CARD.find_iter(text) {
        if is_card(m.as_str()) {
            push(cands, m.start(), m.end(), PiiKind::Card, P_CARD);
        }
    }
    for caps in SSN.captures_iter(text) {
        let (Some(m), Some(a), Some(g), Some(s)) =
            (caps.get(0), caps.get(1), caps.get(2), caps.get(3))
        else {
            continue;
        };
        let area = a.as_str();
        if area != "000"
            && area != "666"
            && !area.starts_with('9')
            && g.as_str() != "00"
            && s.as_str() != "0000"
        {
            push(cands, m.start(), m.end(), PiiKind::Id, P_ID);
        }
    }
    for m in IBAN.find_iter(text) {
        if let Some(len) = iban_prefix(m.as_str()) {
            push(cands, m.start(), m.start() + len, PiiKind::Id, P_ID);
        }
    }
    for caps in ID_CUE.captures_iter(text) {
        if let Some(m) = caps.get(1) {
            let n = m.as_str().bytes().filter(u8::is_ascii_alphanumeric).count();
            if n >= 5 {
                push(cands, m.start(), m.end(), PiiKind::Id, P_ID_CUE);
            }
        }
    }
    for m in IPV4.find_iter(text) {
        let before = &text[..m.start()];
        let after = &text[m.end()..];
        let versionish = before.ends_with(['v', 'V', '.'])
            || before.trim_end().to_ascii_lowercase().ends_with("version")
            || after.starts_with('.') && after[1..].starts_with(|c: char| c.is_ascii_digit());
        if !versionish && m.as_str().parse::<Ipv4Addr>().is_ok() {
            push(cands, m.start(), m.end(), PiiKind::Ip, P_IP);
        }
    }
    if text.contains("::") || text.bytes().filter(|&b| b == b':').count() >= 7 {
        for m in IPV6.find_iter(text) {
            let s = m.as_str();
            if s.bytes().filter(|&b| b == b':').count() >= 2
                && s.parse::<Ipv6Addr>().is_ok()
                && s.len() >= 6
            {
                push(cands, m.start(), m.end(), PiiKind::Ip, P_IP);
            }
        }
    }
    phones(text, cands);
    for m in ADDRESS.find_iter(text) {
        if !preceded_by_money_or_digit(text, m.start()) {
            push(cands, m.start(), m.end(), PiiKind::Address, P_ADDRESS);
        }
    }
    for caps in ADDRESS_LOWER.captures_iter(text) {
        let (Some(m), Some(words)) = (caps.get(0), caps.get(1)) else {
            continue;
        };
        if words
            .as_str()
            .split_whitespace()
            .all(|w| !ADDRESS_STOP.contains(w))
            && !preceded_by_money_or_digit(text, m.start())
        {
            push(cands, m.start(), m.end(), PiiKind::Address, P_ADDRESS);
        }
    }
    for m in PO_BOX.find_iter(text) {
        push(cands, m.start(), m.end(), PiiKind::Address, P_ADDRESS);
    }
}

fn postcodes_and_ninos(text: &str, cands: &mut Vec<Cand>) {
    if !text.bytes().any(|b| b.is_ascii_digit()) {
        return;
    }
    for m in UK_POSTCODE.find_iter(text) {
        push(cands, m.start(), m.end(), PiiKind::Address, P_ADDRESS - 1);
    }
    for m in UK_NINO.find_iter(text) {
        push(cands, m.start(), m.end(), PiiKind::Id, P_ID);
    }
}

fn preceded_by_money_or_digit(text: &str, start: usize) -> bool {
    matches!(
        text[..start].chars().next_back(),
        Some('$' | '£' | '€' | '.' | ',' | '-' | '/' | ':' | '#')
    ) || text[..start].ends_with(char::is_numeric)
}

fn phones(text: &str, cands: &mut Vec<Cand>) {
    for m in PHONE_INTL.find_iter(text) {
        let n = digit_count(m.as_str());
        if (8..=15).contains(&n) {
            push(cands, m.start(), m.end(), PiiKind::Phone, P_PHONE);
        }
    }
    for m in PHONE_NANP.find_iter(text) {
        let s = m.as_str();
        let plain = s.bytes().all(|b| b.is_ascii_digit());
        if preceded_by_money_or_digit(text, m.start()) && !s.starts_with('(') {
            continue;
        }
        if plain && !has_phone_cue(text, m.start()) {
            continue;
        }
        push(cands, m.start(), m.end(), PiiKind::Phone, P_PHONE);
    }
    for m in PHONE_UK.find_iter(text) {
        let s = m.as_str();
        let n = digit_count(s);
        let plain = s.bytes().all(|b| b.is_ascii_digit());
        if !(10..=11).contains(&n)
            || preceded_by_money_or_digit(text, m.start()) && !s.starts_with('(')
        {
            continue;
        }
        if plain && !s.starts_with("07") && !has_phone_cue(text, m.start()) {
            continue;
        }
        push(cands, m.start(), m.end(), PiiKind::Phone, P_PHONE);
    }
    for m in PHONE_LOCAL.find_iter(text) {
        if has_phone_cue(text, m.start()) && !preceded_by_money_or_digit(text, m.start()) {
            push(cands, m.start(), m.end(), PiiKind::Phone, P_PHONE);
        }
    }
}

/// A phone cue word within the 40 bytes before `start`.
fn has_phone_cue(text: &str, start: usize) -> bool {
    let mut from = start.saturating_sub(40);
    while !text.is_char_boundary(from) {
        from += 1;
    }
    PHONE_CUE.is_match(&text[from..start])
}

fn digit_count(s: &str) -> usize {
    s.bytes().filter(u8::is_ascii_digit).count()
}

fn is_card(s: &str) -> bool {
    let digits: Vec<u32> = s.chars().filter_map(|c| c.to_digit(10)).collect();
    if !(13..=19).contains(&digits.len()) {
        return false;
    }
    // Separators, when present, must be one kind (all spaces or all dashes).
    if s.contains(' ') && s.contains('-') {
        return false;
    }
    let prefix2 = digits[0] * 10 + digits[1];
    let network = digits[0] == 4
        || (51..=55).contains(&prefix2)
        || (22..=27).contains(&prefix2)
        || prefix2 == 34
        || prefix2 == 37
        || prefix2 == 36
        || prefix2 == 30
        || prefix2 == 38
        || prefix2 == 35
        || digits[0] == 6;
    network && luhn(&digits)
}

fn luhn(digits: &[u32]) -> bool {
    let mut sum = 0;
    for (i, &d) in digits.iter().rev().enumerate() {
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 { x - 9 } else { x }
        } else {
            d
        };
    }
    sum % 10 == 0
}

/// The longest prefix of `s` (cut at a space) that is a valid IBAN: 15–34 characters without
/// spaces and ISO 7064 mod 97 == 1.
fn iban_prefix(s: &str) -> Option<usize> {
    let mut end = s.len();
    loop {
        let compact: String = s[..end].chars().filter(|c| !c.is_whitespace()).collect();
        if (15..=34).contains(&compact.len()) && iban_mod97(&compact) {
            return Some(end);
        }
        end = s[..end].rfind(' ')?;
    }
}

fn iban_mod97(compact: &str) -> bool {
    let (head, tail) = compact.split_at(4);
    let mut rem: u64 = 0;
    for c in tail.chars().chain(head.chars()) {
        let v = match c {
            '0'..='9' => u64::from(c as u8 - b'0'),
            'A'..='Z' => u64::from(c as u8 - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

static ADDRESS_STOP: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| ADDRESS_STOP_LIST.split_whitespace().collect());
const ADDRESS_STOP_LIST: &str = "\
a an the of on in at to down up my our your his her their and or for from by blocks block miles \
mile minutes hours days weeks months years times km lane lanes more other different same main \
new old long short dirt gravel back side country open way this that these those each every whole \
wrong right one two
";

// ---------------------------------------------------------------------------------------------
// Names

// Strong cues: whatever capitalised word follows is a name (unless it is a stop word).
static NAME_STRONG: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?:(?-u:\b)(?i:my\s+name\s+is|my\s+name's|name's|my\s+names\s+is|call\s+me|i\s+go\s+by|named|signed)|(?-u:\b)(?i:(?:my|our|his|her|their)\s+(?:(?:ex|step|older|younger|little|big|best|twin)[\s-]?)?(?:boyfriend|girlfriend|bf|gf|husband|hubby|wife|partner|fianc[eé]e?|son|daughter|brother|sister|sis|mom|mum|mother|dad|father|friend|bff|boss|manager|supervisor|therapist|counsell?or|psychiatrist|psychologist|doctor|coworker|co-worker|colleague|roommate|flatmate|housemate|neighbou?r|cousin|aunt|auntie|uncle|grandma|grandpa|grandmother|grandfather|nan|niece|nephew|teacher|professor|ex|kid|baby|child|crush|date|cat|dog))\s*,?|(?-u:\b)(?:Dr|Mr|Mrs|Ms|Mx|Prof)\.?)\s+([A-Z][a-z]+(?:[-'][A-Z][a-z]+)?(?:\s+[A-Z][a-z]+(?:[-'][A-Z][a-z]+)?)?)",
    )
});
// Weak cues: the following word is a name only if it is a first name that is also a word
// ("I'm Grace"); unambiguous first names are found anywhere by the list scan.
static NAME_WEAK: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?-u:\b)(?i:i'm|i\s+am|im|this\s+is)\s+([A-Z][a-z]+)(?-u:\b)"));
// A signature: a dash and a capitalised word ending the text ("- John", "-- Sarah K").
static NAME_SIGNATURE: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|\s)[-–—~]{1,2}\s*([A-Z][a-z]+(?:\s[A-Z]\.?)?)\s*\.?\s*$"));

fn names(text: &str, cands: &mut Vec<Cand>) {
    for caps in NAME_STRONG.captures_iter(text) {
        let Some(m) = caps.get(1) else { continue };
        // Drop a trailing second word that is not name-like ("my sister Emma Said").
        let mut end = m.end();
        let s = m.as_str();
        let first = s.split([' ', '\n', '\t']).next().unwrap_or(s);
        if NAME_STOP.contains(first)
            || NAME_STOP.contains(first.split(['-', '\'']).next().unwrap_or(first))
        {
            continue;
        }
        if let Some(sp) = s.find(char::is_whitespace) {
            let second = s[sp..].trim_start();
            if NAME_STOP.contains(second) {
                end = m.start() + sp;
            }
        }
        push(cands, m.start(), end, PiiKind::Name, P_NAME_CUE);
    }
    for caps in NAME_WEAK.captures_iter(text) {
        let Some(m) = caps.get(1) else { continue };
        if AMBIGUOUS_NAMES.contains(m.as_str()) {
            let end = extend_surname(text, m.end());
            push(cands, m.start(), end, PiiKind::Name, P_NAME_CUE);
        }
    }
    for caps in NAME_SIGNATURE.captures_iter(text) {
        let Some(m) = caps.get(1) else { continue };
        let first = m.as_str().split(' ').next().unwrap_or("");
        if !NAME_STOP.contains(first) {
            push(cands, m.start(), m.end(), PiiKind::Name, P_NAME_CUE);
        }
    }
    // Bare mentions of unambiguous first names, with a following capitalised surname.
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        let at_word_start =
            i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if b.is_ascii_uppercase() && at_word_start {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j].is_ascii_lowercase() {
                j += 1;
            }
            let word_end_ok =
                j == bytes.len() || !(bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_');
            // Not inside a placeholder like "[NAME]" (those are all caps, so never match) and
            // not a word glued to a bracket.
            if j > i + 1 && word_end_ok && FIRST_NAMES.contains(&text[i..j]) {
                let end = extend_surname(text, j);
                push(cands, i, end, PiiKind::Name, P_NAME_LIST);
                i = end;
                continue;
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
}

/// `end` moved past a following capitalised surname ("Sarah Johnson"), if there is one.
fn extend_surname(text: &str, end: usize) -> usize {
    let rest = &text[end..];
    let Some(after_space) = rest.strip_prefix(' ') else {
        return end;
    };
    let word_len = after_space
        .char_indices()
        .find(|&(k, c)| {
            if k == 0 {
                !c.is_ascii_uppercase()
            } else {
                !c.is_ascii_lowercase()
            }
        })
        .map_or(after_space.len(), |(k, _)| k);
    if word_len < 2 {
        return end;
    }
    let word = &after_space[..word_len];
    if NAME_STOP.contains(word) || FIRST_NAMES.contains(word) && word_len < 3 {
        return end;
    }
    let next = after_space[word_len..].chars().next();
    if next.is_some_and(|c| c.is_alphanumeric() || c == '\'') {
        return end;
    }
    end + 1 + word_len
}

/// Capitalised words that are not names even right after a name cue.
static NAME_STOP: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| NAME_STOP_LIST.split_whitespace().collect());
const NAME_STOP_LIST: &str = "\
Dr Mr Mrs Ms Mx Prof Miss Sr Jr St \
I Im The A An And But Or So He She They We It This That My His Her Our Their Your You Me Him \
Them Us Mom Mum Dad Mother Father God Lord Monday Tuesday Wednesday Thursday Friday Saturday \
Sunday January February March July September October November December Christmas Easter \
Thanksgiving Reddit Google Facebook Instagram Twitter Tiktok TikTok Discord Snapchat English \
American British Covid Anxiety Depression Therapist Doctor Lol Omg Ok Okay Yes No Not Just Also \
Too Again Everyone Everybody All Guys Though Then Now Today Tonight Tomorrow Yesterday Who What \
When Where Why How Is Was Has Had Said Says Told Because After Before Always Never Sometimes \
Still Even Really Very So Anyway Please Thanks Thank Sorry Hi Hello Hey Dear Love Best Regards \
Cheers In On At For With From To Of If As Am Are Be Been Do Does Did Have Would Can Could Should \
Might Must Edit Update Tldr Tl Here There Some Any Much Many More Most Other Another One Two \
Three First Last Next New Old Good Bad Well Oh Ah Um Uh Yeah Yep Nope Haha Lmao Idk Tbh Imo Btw \
Fml Sad Happy Tired Anxious Depressed Scared Lonely Angry Fine Alone Lost Done Sick Stressed \
Overwhelmed Exhausted Afraid Worried Nervous Crazy Stupid Worthless Broken Numb Confused Ashamed \
Guilty Hopeless Every Each Such Only Both Either Neither Whatever Somebody Someone Nobody Anyone \
Nothing Everything Something Anything Street Road Avenue Hospital School University College \
Church Work Home Jesus Christ Catholic Christian Muslim Jewish Asian Black White Spanish French \
German Chinese Mexican Indian Canadian Australian Netflix Amazon Apple Microsoft Uber Walmart \
Target Xbox Playstation Iphone Android Zoom Teams Slack Whatsapp Spotify Youtube Medium Doc \
Senior Junior Sir Madam Maam Team Man Dude Bro Girl Boy Lady Buddy Pal Friend Friends Guy Gal \
Kid Kids Baby Honey Babe Sweetie Bud Brother Sister Cousin Uncle Aunt Grandma Grandpa Professor \
Coach Officer Captain Chief Boss Bot Reddit's Mods Admin Admins Moderator Op Ops
";

/// First names that are also common words or places: names only after a greeting-like cue
/// ("I'm Grace", "Hi, Will") or a strong cue ("my sister Hope").
static AMBIGUOUS_NAMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| AMBIGUOUS_NAMES_LIST.split_whitespace().collect());
const AMBIGUOUS_NAMES_LIST: &str = "\
Will May June April August Hope Joy Grace Faith Mark Bill Rose Art Sue Pat Frank Rich Max Angel \
Summer Dawn Amber Iris Ruby Jade Penny Sky Glen Dean Rob Chase Drew Hunter Gene Ray Holly Ivy \
Violet Robin Carol Destiny Harmony Melody Page Reed Cliff Wade Miles Brook Clay Earl Guy Lily \
Daisy Autumn Crystal Heather Jasmine Olive Pearl Star Storm River Rowan Sage Shelby Sterling \
Tucker Van Don Josh Al Ed Kim Lou Jordan Austin Dallas Paris Georgia Virginia Carolina Florence \
Chelsea Victoria Sydney Brooklyn Devon Kent Lincoln Jersey Madison Phoenix Savannah Alexa Siri \
Mercedes Porsche Bentley
";

/// Common first names that are rarely anything else; a capitalised one is taken as a name
/// wherever it appears.
static FIRST_NAMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| FIRST_NAMES_LIST.split_whitespace().collect());
const FIRST_NAMES_LIST: &str = "\
Aaron Abby Abigail Adam Adrian Aiden Aisha Alan Albert Alejandro Alex Alexander Alexandra Alexis \
Alice Alicia Alison Allison Alyssa Amanda Amelia Amy Ana Andrea Andrew Andy Angela Anna Anne \
Annie Anthony Antonio Ashley Ava Barbara Becky Ben Benjamin Beth Bethany Betty Blake Bradley \
Brandon Brenda Brian Brittany Bryan Caleb Cameron Carlos Caroline Carrie Catherine Charles \
Charlie Charlotte Chloe Chris Christina Christine Christopher Cindy Claire Cody Colin Connor \
Courtney Craig Cynthia Daniel Danielle Danny Darren David Debbie Deborah Denise Dennis Derek \
Diana Diane Dominic Donna Dylan Eddie Edward Eleanor Elijah Elizabeth Ella Ellie Emily Emma Eric \
Erica Erin Ethan Eva Evan Evelyn Fatima Fiona Gabriel Gabriella Gary Gavin George Gerald Gina \
Gregory Hannah Harry Hayley Heidi Helen Henry Isaac Isabella Isabelle Jack Jackson Jacob Jake \
James Jamie Jane Janet Jared Jasmin Jason Jeff Jeffrey Jenna Jennifer Jenny Jeremy Jesse Jessica \
Jill Jim Jimmy Joanna Joe Joel John Johnny Jon Jonathan Jose Joseph Joshua Joyce Juan Judith \
Judy Julia Julian Julie Justin Kaitlyn Karen Kate Katherine Kathleen Kathryn Katie Kayla Keith \
Kelly Kelsey Kenneth Kevin Kimberly Kyle Laura Lauren Leah Leo Liam Linda Lisa Logan Lucas Lucy \
Luis Luke Madeline Madison Maria Marie Marissa Martha Martin Mary Matt Matthew Megan Melissa Mia \
Michael Michelle Mike Mohammed Mohammad Muhammad Molly Monica Morgan Nancy Natalie Nathan \
Nicholas Nick Nicole Noah Olivia Oliver Owen Pamela Patricia Patrick Paul Peter Philip Priya \
Rachel Rahul Rebecca Richard Rick Ricky Riley Robert Roger Ronald Ryan Sam Samantha Samuel \
Sandra Sara Sarah Scott Sean Sebastian Seth Shannon Sharon Sophia Sophie Stephanie Stephen Steve \
Steven Susan Taylor Teresa Thomas Tim Timothy Tom Tommy Tony Travis Tyler Valerie Vanessa Victor \
Vincent Walter Wendy William Zach Zachary Zoe Ahmed Ali Omar Hassan Aditya Arjun Ananya Wei Mei \
Hiroshi Yuki Kenji Sven Lars Ingrid Pierre Sophie Giulia Marco Luca Mateo Diego Sofia Camila \
Valentina Lucia Elena Ivan Dmitri Olga Natasha Tanya Siobhan Niamh Aoife Ciaran Declan Callum \
Ewan Hamish Kirsty Shona Gemma Jodie Leanne Stacey Tracey Nigel Graham Trevor Clive Dave Steph \
Becca Liz Beth Meg Nate Ben Tessa Kristen Kristin Lindsay Lindsey Brooke Paige Kendra Tiffany \
Jeremiah Marcus Malik Jamal Darnell Tyrone Keisha Latoya Shanice
";

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> String {
        scrub(text).0
    }

    #[test]
    fn every_pattern_compiles() {
        for r in [
            &URL_SCHEME,
            &URL_BARE,
            &EMAIL,
            &EMAIL_OBFUSCATED,
            &HANDLE_AT,
            &HANDLE_REDDIT,
            &CARD,
            &SSN,
            &IBAN,
            &ID_CUE,
            &IPV4,
            &IPV6,
            &PHONE_INTL,
            &PHONE_NANP,
            &PHONE_UK,
            &PHONE_LOCAL,
            &PHONE_CUE,
            &ADDRESS,
            &ADDRESS_LOWER,
            &PO_BOX,
            &UK_POSTCODE,
            &UK_NINO,
            &NAME_STRONG,
            &NAME_WEAK,
            &NAME_SIGNATURE,
        ] {
            let _ = r.is_match("");
        }
    }

    #[test]
    fn structured_types() {
        assert_eq!(s("mail me at jo.doe+x@gmail.com."), "mail me at [EMAIL].");
        assert_eq!(s("see https://example.com/a?b=c)."), "see [URL]).");
        assert_eq!(
            s("(see https://en.wikipedia.org/wiki/Foo_(bar))"),
            "(see [URL])"
        );
        assert_eq!(
            s("call 555-123-4567 or (555) 123-4567"),
            "call [PHONE] or [PHONE]"
        );
        assert_eq!(s("+44 7700 900123 is mine"), "[PHONE] is mine");
        assert_eq!(s("card 4111 1111 1111 1111 ok"), "card [CARD] ok");
        assert_eq!(
            s("card 4111 1111 1111 1112 ok"),
            "card 4111 1111 1111 1112 ok"
        );
        assert_eq!(
            s("IBAN GB82 WEST 1234 5698 7654 32 Thanks"),
            "IBAN [ID] Thanks"
        );
        assert_eq!(s("ssn 123-45-6789"), "ssn [ID]");
        assert_eq!(s("my ip is 192.168.0.12"), "my ip is [IP]");
        assert_eq!(s("ping @jane_doe now"), "ping [HANDLE] now");
        assert_eq!(
            s("I live at 221 Baker Street, sadly"),
            "I live at [ADDRESS], sadly"
        );
    }

    #[test]
    fn look_alikes_stay() {
        for t in [
            "On 2021-03-04 at 10:30 I paid $1,299.99 for version 1.2.3.4",
            "I'm Anxious and Tired all the time",
            "It was 1999 and I had 3000 followers, 555 likes",
            "Since 12/05/2023 I feel 100% worse",
            "[NAME] told me to call him",
            "I walked 5 blocks down the road",
        ] {
            assert_eq!(s(t), t);
        }
    }

    #[test]
    fn names_with_cues() {
        assert_eq!(
            s("Hi, I'm Sarah and my boyfriend Jake left."),
            "Hi, I'm [NAME] and my boyfriend [NAME] left."
        );
        assert_eq!(s("My name is Will."), "My name is [NAME].");
        assert_eq!(s("Dr. Patel said so"), "Dr. [NAME] said so");
        assert_eq!(
            s("Thanks for reading.\n- John"),
            "Thanks for reading.\n- [NAME]"
        );
    }

    #[test]
    fn counts_and_record_score() {
        let mut r = Record::new(
            aligndata_core::SourceKind::Real,
            "a@b.com and c@d.org".into(),
        );
        let counts = scrub_record(&mut r);
        assert_eq!(counts.get(PiiKind::Email), 2);
        assert_eq!(r.text, "[EMAIL] and [EMAIL]");
        assert_eq!(r.score(PII_SCORE), Some(2.0));
        assert!(r.is_kept());
        let json = serde_json::to_value(counts).unwrap_or_default();
        assert_eq!(json["email"], 2);
    }

    /// Tokens for matching: placeholders are one token, then words, then single punctuation.
    fn tokens(text: &str) -> Vec<&str> {
        static TOKEN: LazyLock<Regex> = LazyLock::new(|| re(r"\[[A-Z]+\]|\w+|[^\w\s]"));
        TOKEN.find_iter(text).map(|m| m.as_str()).collect()
    }

    /// Pairs of (predicted index, expected index) on a longest common subsequence of tokens.
    fn align<'a>(a: &[&'a str], b: &[&'a str]) -> Vec<(usize, usize)> {
        let (n, m) = (a.len(), b.len());
        let mut dp = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                dp[i][j] = if a[i] == b[j] {
                    dp[i + 1][j + 1] + 1
                } else {
                    dp[i + 1][j].max(dp[i][j + 1])
                };
            }
        }
        let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
        while i < n && j < m {
            if a[i] == b[j] {
                pairs.push((i, j));
                i += 1;
                j += 1;
            } else if dp[i + 1][j] >= dp[i][j + 1] {
                i += 1;
            } else {
                j += 1;
            }
        }
        pairs
    }

    /// Precision and recall per type on `test_data/pii/planted.jsonl`.
    ///
    /// Matching: the scrubbed text and the expected text are split into tokens (a placeholder is
    /// one token) and aligned on their longest common subsequence. A predicted placeholder
    /// aligned with the same placeholder in the expected text is a true positive; a predicted
    /// one left unaligned is a false positive; an expected one left unaligned is a false
    /// negative. Placeholders already in the input (GoEmotions' `[NAME]`) are not counted.
    /// Separately, "exact lines" counts outputs equal to the expected text: a placeholder in the
    /// right place whose span is too short (leaving a surname behind) is a TP here but not exact.
    ///
    /// Thresholds: structured types (email, URL, card, ID, IP, phone, handle) must reach
    /// precision ≥ 0.95 and recall ≥ 0.9, since they have shapes and checksums and a miss is a
    /// leak; addresses ≥ 0.9/0.8 and names ≥ 0.85/0.75, since rules catch those only where a
    /// cue or list makes them detectable. Over all types: recall ≥ 0.95 and precision ≥ 0.9,
    /// the issue's target. The set was written by the rules' author, so these are optimistic
    /// figures for in-domain text, not a guarantee on a new corpus.
    #[test]
    fn planted_pii_precision_recall() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/test_data/pii/planted.jsonl");
        let data = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let mut tp = [0u64; 9];
        let mut fp = [0u64; 9];
        let mut fn_ = [0u64; 9];
        let (mut lines, mut exact, mut negatives, mut clean_negatives) = (0, 0, 0, 0);
        let mut misses = Vec::new();
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            let (Some(text), Some(expected)) = (v["text"].as_str(), v["expected"].as_str()) else {
                panic!("line without text/expected: {line}");
            };
            lines += 1;
            let (got, _) = scrub(text);
            if got == expected {
                exact += 1;
            } else {
                misses.push(format!(
                    "  input:    {text:?}\n  expected: {expected:?}\n  got:      {got:?}"
                ));
            }
            if text == expected {
                negatives += 1;
                clean_negatives += usize::from(got == expected);
            }
            let pre: Vec<&str> = tokens(text)
                .into_iter()
                .filter(|t| PiiKind::from_placeholder(t).is_some())
                .collect();
            let g = tokens(&got);
            let e = tokens(expected);
            let pairs = align(&g, &e);
            let mut g_hit = vec![false; g.len()];
            let mut e_hit = vec![false; e.len()];
            for (i, j) in pairs {
                g_hit[i] = true;
                e_hit[j] = true;
            }
            let mut pre_left: Vec<&str> = pre.clone();
            for (i, t) in g.iter().enumerate() {
                let Some(k) = PiiKind::from_placeholder(t) else {
                    continue;
                };
                if g_hit[i] {
                    if let Some(p) = pre_left.iter().position(|x| x == t) {
                        pre_left.remove(p);
                        continue;
                    }
                    tp[k.index()] += 1;
                } else {
                    fp[k.index()] += 1;
                }
            }
            for (j, t) in e.iter().enumerate() {
                if let (Some(k), false) = (PiiKind::from_placeholder(t), e_hit[j]) {
                    fn_[k.index()] += 1;
                }
            }
        }
        let ratio = |a: u64, b: u64| {
            if a + b == 0 {
                1.0
            } else {
                a as f64 / (a + b) as f64
            }
        };
        let mut table = String::from(
            "| type | planted | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|---|\n",
        );
        let mut failures = Vec::new();
        for k in PiiKind::ALL {
            let i = k.index();
            let (p, r) = (ratio(tp[i], fp[i]), ratio(tp[i], fn_[i]));
            table.push_str(&format!(
                "| {} | {} | {} | {} | {} | {:.3} | {:.3} |\n",
                k.placeholder(),
                tp[i] + fn_[i],
                tp[i],
                fp[i],
                fn_[i],
                p,
                r
            ));
            let (min_p, min_r) = match k {
                PiiKind::Name => (0.85, 0.75),
                PiiKind::Address => (0.9, 0.8),
                _ => (0.95, 0.9),
            };
            if p < min_p || r < min_r {
                failures.push(format!(
                    "{}: precision {p:.3} (min {min_p}), recall {r:.3} (min {min_r})",
                    k.placeholder()
                ));
            }
        }
        let (ttp, tfp, tfn) = (
            tp.iter().sum::<u64>(),
            fp.iter().sum::<u64>(),
            fn_.iter().sum::<u64>(),
        );
        let (p, r) = (ratio(ttp, tfp), ratio(ttp, tfn));
        table.push_str(&format!(
            "| all | {} | {ttp} | {tfp} | {tfn} | {p:.3} | {r:.3} |\n",
            ttp + tfn
        ));
        table.push_str(&format!(
            "\n{lines} lines, {exact} scrubbed exactly as expected; {clean_negatives} of {negatives} negative lines untouched\n"
        ));
        eprintln!("{table}");
        if std::env::var_os("PII_SHOW_MISSES").is_some() {
            eprintln!("{}", misses.join("\n"));
        }
        if p < 0.9 || r < 0.95 {
            failures.push(format!(
                "all types: precision {p:.3} (min 0.9), recall {r:.3} (min 0.95)"
            ));
        }
        assert!(
            lines >= 190 && negatives >= 40,
            "planted set too small: {lines} lines, {negatives} negatives"
        );
        assert!(failures.is_empty(), "{}\n{table}", failures.join("\n"));
    }
}
