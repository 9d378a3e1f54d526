//! The normal form that exact and near dedup compare.
//!
//! Two posts that differ only in case, spacing or punctuation ("I can't do this!!" and
//! "i cant   do this") are the same message to a reader, so they should be the same message to
//! dedup. The normal form is:
//!
//! 1. Unicode NFKC (full-width letters, ligatures and compatibility forms fold to plain ones;
//!    skipped for pure-ASCII text, where it is the identity);
//! 2. case folding (`char::to_lowercase`);
//! 3. punctuation and symbols removed: only alphanumeric characters and whitespace survive, so
//!    `can't` becomes `cant` and emoji disappear;
//! 4. whitespace runs collapsed to one ASCII space, and trimmed.
//!
//! A text whose normal form is empty (only punctuation or emoji) is never called a duplicate:
//! there is nothing left to compare, and calling every "!!!" a copy of every "???" would be wrong.

use unicode_normalization::UnicodeNormalization;

/// Writes the normal form of `text` into `out` (cleared first).
pub fn normalize_into(text: &str, out: &mut String) {
    out.clear();
    if text.is_ascii() {
        push_folded(text.chars(), out);
    } else {
        push_folded(text.nfkc(), out);
    }
    if out.ends_with(' ') {
        out.pop();
    }
}

/// The normal form of `text`; see the module docs.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, &mut out);
    out
}

fn push_folded(chars: impl Iterator<Item = char>, out: &mut String) {
    // `pending_space`: a whitespace run was seen after some kept character.
    let mut pending_space = false;
    for c in chars {
        if c.is_whitespace() {
            pending_space = !out.is_empty();
        } else if c.is_alphanumeric() {
            if pending_space {
                out.push(' ');
                pending_space = false;
            }
            if c.is_ascii() {
                out.push(c.to_ascii_lowercase());
            } else {
                out.extend(c.to_lowercase());
            }
        }
        // Anything else (punctuation, symbols, emoji, controls) is dropped without a space, so
        // "can't" and "cant" agree.
    }
}

/// The exact-dedup key: xxh3-128 of the normal form (`None` when the normal form is empty).
pub fn exact_key(normal: &str) -> Option<u128> {
    if normal.is_empty() {
        None
    } else {
        Some(xxhash_rust::xxh3::xxh3_128(normal.as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_spacing_and_punctuation_fold() {
        assert_eq!(normalize("  I can't   DO this!!\n"), "i cant do this");
        assert_eq!(normalize("i cant do this"), "i cant do this");
        assert_eq!(normalize("Ｆｕｌｌ width"), "full width");
        assert_eq!(normalize("!!! 😭 ..."), "");
        assert_eq!(exact_key(""), None);
    }
}
