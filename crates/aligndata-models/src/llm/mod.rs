//! Language models behind one synchronous trait.
//!
//! Why this shape:
//! - Stages are synchronous and work in batches, so the trait takes a whole batch and returns one
//!   result per request, in order. A backend is free to run the batch however it is fastest: the
//!   local backend decodes many sequences in each forward pass ([`local`]), the OpenAI backend
//!   keeps many HTTP requests in flight on an internal tokio runtime ([`openai`]).
//! - Every result is also reported through a callback *as soon as it completes*, on the caller's
//!   thread. The completion cache ([`cache`]) relies on this to persist each result immediately,
//!   so that killing a run loses at most the requests that were in flight.
//! - A request carries everything that determines its output (including the seed), so it can be
//!   hashed into a cache key, and so that local decoding is reproducible.

pub mod cache;
mod http1;
pub mod local;
pub mod openai;
mod qmat;
mod tokenizer;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use cache::CachedLlm;
pub use local::{LocalConfig, LocalLlm};
pub use openai::{OpenAiConfig, OpenAiLlm};

/// One chat message (`role` is `system`, `user` or `assistant`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        Self {
            role: role.into(),
            content: content.into(),
        }
    }
    pub fn system(content: impl Into<String>) -> Self {
        Self::new("system", content)
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self::new("user", content)
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::new("assistant", content)
    }
}

/// Everything that determines a completion. Hashing it (with the model id) gives the cache key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// Chat messages, rendered with the model's chat template. Ignored when `raw_prompt` is set.
    pub messages: Vec<ChatMessage>,
    /// A plain continuation prompt: no chat template (OpenAI backends use `/completions`).
    pub raw_prompt: Option<String>,
    /// 0 means greedy decoding.
    pub temperature: f32,
    /// Nucleus sampling mass in (0, 1]; 1 disables it.
    pub top_p: f32,
    pub max_tokens: u32,
    pub seed: u64,
    /// Generation stops before the first occurrence of any of these strings.
    pub stop: Vec<String>,
    /// Ask for a JSON object (OpenAI: `response_format`; the reply is parsed and repaired).
    pub json_mode: bool,
    /// Also stop at the end of the first line of at least this many words (see
    /// [`cut_after_line`]): for continuations whose answer is one line, everything the model
    /// writes after that line is wasted. The local backend stops generating there; the
    /// OpenAI-compatible one cuts the reply there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_after_line: Option<u32>,
    /// No end of generation before the first non-space character: a small model asked to
    /// continue a list often ends at once, and an empty answer is a wasted attempt. The local
    /// backend masks its end-of-generation tokens, and any token that would complete a stop
    /// string, until then; others ignore it.
    // Both fields are left out of the serialised request when unset, so cache keys of requests
    // that do not use them are what they were before the fields existed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub require_text: bool,
}

impl Default for CompletionRequest {
    fn default() -> Self {
        Self {
            messages: Vec::new(),
            raw_prompt: None,
            temperature: 0.7,
            top_p: 0.95,
            max_tokens: 256,
            seed: 0,
            stop: Vec::new(),
            json_mode: false,
            stop_after_line: None,
            require_text: false,
        }
    }
}

impl CompletionRequest {
    /// A chat request with default sampling parameters.
    pub fn chat(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
    /// A raw continuation request with default sampling parameters.
    pub fn raw(prompt: impl Into<String>) -> Self {
        Self {
            raw_prompt: Some(prompt.into()),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End of sequence token or a stop string.
    Stop,
    /// `max_tokens` reached (or the context window is full).
    Length,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub finish_reason: FinishReason,
    pub usage: Usage,
    /// True when the result came from the completion cache.
    #[serde(default)]
    pub cached: bool,
}

/// Counters a caller can print. Backends fill what applies to them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Completions asked of the backend (HTTP attempts for OpenAI, sequences for local).
    pub requests: u64,
    /// Attempts repeated after a retryable failure.
    pub retries: u64,
    /// Requests that failed for good.
    pub failures: u64,
    /// Times the circuit breaker opened.
    pub breaker_openings: u64,
    /// JSON-mode replies repaired locally, and ones re-asked because repair failed.
    pub json_repairs: u64,
    pub json_retries: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// In the currency of the configured prices.
    pub cost: f64,
    pub cache_hits: u64,
    pub cache_misses: u64,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "requests {} retries {} failures {} breaker-openings {} json-repairs {} json-retries {} \
             tokens {}+{} cost {:.4} cache {}/{} hits",
            self.requests,
            self.retries,
            self.failures,
            self.breaker_openings,
            self.json_repairs,
            self.json_retries,
            self.prompt_tokens,
            self.completion_tokens,
            self.cost,
            self.cache_hits,
            self.cache_hits + self.cache_misses
        )
    }
}

/// A language model. Synchronous at the boundary: stages are synchronous.
pub trait Llm: Send + Sync {
    /// Identifies the weights/endpoint; part of every cache key.
    fn model_id(&self) -> &str;

    /// Completes every request; calls `on_result(index, &result)` on the caller's thread as each
    /// one finishes (in completion order), and returns all results in request order.
    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &anyhow::Result<Completion>),
    ) -> Vec<anyhow::Result<Completion>>;

    /// Completes every request; `progress(n)` is called with the number of requests that just
    /// finished (a delta, for `ProgressBar::inc`).
    fn complete_batch(
        &self,
        requests: &[CompletionRequest],
        progress: &dyn Fn(usize),
    ) -> Vec<anyhow::Result<Completion>> {
        self.complete_each(requests, &mut |_, _| progress(1))
    }

    /// A snapshot of the counters.
    fn stats(&self) -> Stats {
        Stats::default()
    }
}

impl<L: Llm + ?Sized> Llm for Box<L> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &anyhow::Result<Completion>),
    ) -> Vec<anyhow::Result<Completion>> {
        (**self).complete_each(requests, on_result)
    }
    fn stats(&self) -> Stats {
        (**self).stats()
    }
}

impl<L: Llm + ?Sized> Llm for std::sync::Arc<L> {
    fn model_id(&self) -> &str {
        (**self).model_id()
    }
    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &anyhow::Result<Completion>),
    ) -> Vec<anyhow::Result<Completion>> {
        (**self).complete_each(requests, on_result)
    }
    fn stats(&self) -> Stats {
        (**self).stats()
    }
}

/// Truncates `text` before the earliest occurrence of any stop string, searching only from
/// `from` (a byte offset; earlier text was already checked). Returns true if it truncated.
pub(crate) fn apply_stop(text: &mut String, stop: &[String], from: usize) -> bool {
    let mut cut: Option<usize> = None;
    for s in stop.iter().filter(|s| !s.is_empty()) {
        let mut start = from.saturating_sub(s.len());
        while start > 0 && !text.is_char_boundary(start) {
            start -= 1;
        }
        if let Some(pos) = text[start..].find(s.as_str()) {
            let pos = start + pos;
            cut = Some(cut.map_or(pos, |c: usize| c.min(pos)));
        }
    }
    match cut {
        Some(c) => {
            text.truncate(c);
            true
        }
        None => false,
    }
}

/// Words in `s`: whitespace-separated tokens with a letter or digit. `generate`'s output parser
/// counts with it too, so that a line [`cut_after_line`] stops at is one the parser keeps.
pub fn count_words(s: &str) -> usize {
    s.split_whitespace()
        .filter(|w| w.chars().any(char::is_alphanumeric))
        .count()
}

/// Cuts `text` at the first newline (at byte `from` or later) that ends a line of at least
/// `min_words` words ([`count_words`]); true if it cut.
pub(crate) fn cut_after_line(text: &mut String, min_words: u32, from: usize) -> bool {
    let mut start = from.min(text.len());
    while start > 0 && !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut search = start;
    while let Some(rel) = text[search..].find('\n') {
        let nl = search + rel;
        let line_start = text[..nl].rfind('\n').map_or(0, |i| i + 1);
        if count_words(&text[line_start..nl]) >= min_words as usize {
            text.truncate(nl);
            return true;
        }
        search = nl + 1;
    }
    false
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn line_stop_waits_for_a_line_with_enough_words() {
        // A leading newline and a short title do not end it; the first real line does.
        let mut t = "\nTitle: Work\nI redo every slide ten times.\nAnother line".to_string();
        assert!(cut_after_line(&mut t, 3, 0));
        assert_eq!(t, "\nTitle: Work\nI redo every slide ten times.");
        let mut t = "no newline yet but many words".to_string();
        assert!(!cut_after_line(&mut t, 3, 0));
        // Only newlines at or after `from` are looked at (earlier ones were checked before).
        let mut t = "one two three\nfour five six\n".to_string();
        assert!(cut_after_line(&mut t, 3, 14));
        assert_eq!(t, "one two three\nfour five six");
        let mut t = "- - -\n".to_string();
        assert!(!cut_after_line(&mut t, 3, 0), "punctuation is not words");
    }

    #[test]
    fn stop_strings_cut_at_earliest() {
        let mut t = "hello world. bye\nmore".to_string();
        assert!(apply_stop(&mut t, &["\n".into(), ". ".into()], 0));
        assert_eq!(t, "hello world");
        let mut t = "abc".to_string();
        assert!(!apply_stop(&mut t, &["x".into()], 0));
        let mut t = "ééé stop".to_string();
        assert!(apply_stop(&mut t, &["stop".into()], 5));
        assert_eq!(t, "ééé ");
    }
}
