//! Any OpenAI-compatible server (vLLM, Ollama, llama.cpp server, OpenAI) as an [`Llm`].
//!
//! Why it is built this way: at scale the throughput comes from the serving side, and the client's
//! job is to keep the server saturated, politely (DESIGN.md, "Scale").
//! - **Bounded concurrency.** A semaphore caps requests on the wire (`max_concurrency`); a request
//!   waiting out a back-off does not hold a slot. Tasks are spawned in a window of the same size,
//!   so a batch of a million requests costs memory for the window only.
//! - **Retries** with exponential back-off and full jitter on 429, 408, 5xx, timeouts, connection
//!   errors and malformed bodies; `Retry-After` (seconds or an HTTP date, and `retry-after-ms`) is
//!   honoured instead of our own delay. Other 4xx are the caller's fault and fail at once.
//! - **A circuit breaker** shared by all workers: after `breaker_threshold` consecutive failures it
//!   opens and every worker waits for `breaker_cooldown`; then one probe request is let through
//!   (half-open): success closes it, failure re-opens it. A dead or overloaded server therefore
//!   pauses the run instead of burning quota and retry budgets.
//! - **JSON mode** asks for `response_format: json_object` and still parses the reply: code fences
//!   and text around the object are stripped and trailing commas fixed ([`repair_json`]); a reply
//!   that cannot be repaired is asked for once more, with a note that it must be valid JSON.
//! - **Accounting**: attempts, retries, failures, breaker openings, tokens and cost (prices per 1k
//!   tokens, default 0) in a [`Stats`] snapshot.
//!
//! - **Transport**: plain `http://` servers are spoken to with a lean HTTP/1.1 client
//!   ([`super::http1`]: ~5 KB per request in flight instead of reqwest's ~25 KB, which matters
//!   with thousands of requests in flight); `https://`, or any URL when an HTTP proxy is set in
//!   the environment, with reqwest.
//!
//! The trait is synchronous; the backend owns a small tokio runtime and blocks on it, so it must
//! not be called from inside another tokio runtime's worker thread.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, anyhow};
use rand::Rng;
use serde::Deserialize;
use serde_json::json;

use super::{Completion, CompletionRequest, FinishReason, Llm, Stats, Usage};

/// Options for [`OpenAiLlm`].
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// Base URL including the API prefix, e.g. `http://localhost:8000/v1`.
    pub base_url: String,
    pub model: String,
    /// Name of the environment variable holding the API key (`None`: send no key).
    pub api_key_env: Option<String>,
    pub max_concurrency: usize,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Upper bound on a server-requested `Retry-After`.
    pub max_retry_after: Duration,
    /// Consecutive failures that open the breaker.
    pub breaker_threshold: u32,
    pub breaker_cooldown: Duration,
    pub price_prompt_per_1k: f64,
    pub price_completion_per_1k: f64,
    /// Threads of the internal tokio runtime.
    pub io_threads: usize,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: "http://localhost:8000/v1".into(),
            model: "default".into(),
            api_key_env: Some("OPENAI_API_KEY".into()),
            max_concurrency: 64,
            request_timeout: Duration::from_secs(120),
            connect_timeout: Duration::from_secs(10),
            max_retries: 8,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(300),
            breaker_threshold: 8,
            breaker_cooldown: Duration::from_secs(30),
            price_prompt_per_1k: 0.0,
            price_completion_per_1k: 0.0,
            io_threads: 2,
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    retries: AtomicU64,
    failures: AtomicU64,
    json_repairs: AtomicU64,
    json_retries: AtomicU64,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
}

#[derive(Default)]
struct BreakerState {
    consecutive: u32,
    open_until: Option<Instant>,
    probing: bool,
}

/// Consecutive-failure circuit breaker shared by all workers.
struct Breaker {
    state: Mutex<BreakerState>,
    threshold: u32,
    cooldown: Duration,
    openings: AtomicU64,
}

enum Gate {
    Pass,
    Probe,
}

impl Breaker {
    /// Waits while the breaker is open; returns whether this request is the half-open probe.
    async fn enter(&self) -> Gate {
        loop {
            let wait = {
                let Ok(mut s) = self.state.lock() else {
                    return Gate::Pass;
                };
                match s.open_until {
                    None => return Gate::Pass,
                    Some(t) => {
                        let now = Instant::now();
                        if now < t {
                            t - now
                        } else if !s.probing {
                            s.probing = true;
                            return Gate::Probe;
                        } else {
                            // A probe is out: poll until it settles the state.
                            (self.cooldown / 20)
                                .clamp(Duration::from_millis(5), Duration::from_millis(100))
                        }
                    }
                }
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn success(&self) {
        if let Ok(mut s) = self.state.lock() {
            *s = BreakerState::default();
        }
    }

    fn failure(&self, gate: &Gate) {
        if let Ok(mut s) = self.state.lock() {
            s.consecutive = s.consecutive.saturating_add(1);
            let reopen = matches!(gate, Gate::Probe);
            if reopen || (s.open_until.is_none() && s.consecutive >= self.threshold) {
                s.open_until = Some(Instant::now() + self.cooldown);
                s.probing = false;
                self.openings.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

struct Shared {
    client: reqwest::Client,
    /// Plain-HTTP transport, when the base URL allows it (see the module docs).
    http1: Option<super::http1::Http1>,
    cfg: OpenAiConfig,
    key: Option<String>,
    sem: tokio::sync::Semaphore,
    breaker: Breaker,
    c: Counters,
}

/// An OpenAI-compatible chat/completions endpoint.
pub struct OpenAiLlm {
    shared: Arc<Shared>,
    rt: tokio::runtime::Runtime,
    model_id: String,
}

enum Fail {
    Retry(anyhow::Error, Option<Duration>),
    Fatal(anyhow::Error),
}

#[derive(Deserialize)]
struct Resp {
    choices: Vec<Choice>,
    usage: Option<RespUsage>,
}
#[derive(Deserialize)]
struct Choice {
    message: Option<Msg>,
    text: Option<String>,
    finish_reason: Option<String>,
}
#[derive(Deserialize)]
struct Msg {
    content: Option<String>,
}
#[derive(Deserialize)]
struct RespUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
}

/// Parses `retry-after-ms`, then `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    if let Some(ms) = headers.get("retry-after-ms").and_then(|v| v.to_str().ok())
        && let Ok(ms) = ms.trim().parse::<f64>()
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let v = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = v.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Some(Duration::from_secs_f64(secs));
        }
        return None;
    }
    let when = httpdate::parse_http_date(v).ok()?;
    Some(
        when.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO),
    )
}

/// Extracts one JSON value from a model reply: strips code fences and surrounding text, removes
/// trailing commas. Returns the (possibly repaired) JSON text, or `None` if it cannot be parsed.
pub fn repair_json(text: &str) -> Option<String> {
    let t = text.trim();
    if serde_json::from_str::<serde_json::Value>(t).is_ok() {
        return Some(t.to_string());
    }
    // Inside a code fence, if there is one.
    let mut body = t;
    if let Some(start) = t.find("```") {
        let after = &t[start + 3..];
        let after = after.find('\n').map_or(after, |nl| &after[nl + 1..]);
        body = after.find("```").map_or(after, |end| &after[..end]);
    }
    let open = body.find(['{', '['])?;
    let s = &body[open..];
    // Find the matching close bracket, respecting strings.
    let (mut depth, mut in_str, mut esc, mut end) = (0i32, false, false, None);
    for (i, ch) in s.char_indices() {
        if in_str {
            match (esc, ch) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match ch {
            '"' => in_str = true,
            '{' | '[' => depth += 1,
            '}' | ']' => {
                depth -= 1;
                if depth == 0 {
                    end = Some(i + 1);
                    break;
                }
            }
            _ => {}
        }
    }
    let cand = &s[..end?];
    if serde_json::from_str::<serde_json::Value>(cand).is_ok() {
        return Some(cand.to_string());
    }
    // Remove trailing commas before a closing bracket (outside strings).
    let mut out = String::with_capacity(cand.len());
    let (mut in_str, mut esc) = (false, false);
    let chars: Vec<char> = cand.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        if in_str {
            match (esc, ch) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            out.push(ch);
            continue;
        }
        if ch == '"' {
            in_str = true;
        }
        if ch == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(ch);
    }
    serde_json::from_str::<serde_json::Value>(&out)
        .ok()
        .map(|_| out)
}

impl OpenAiLlm {
    pub fn new(cfg: OpenAiConfig) -> Result<Self> {
        let key = match &cfg.api_key_env {
            Some(var) => std::env::var(var).ok().filter(|k| !k.is_empty()),
            None => None,
        };
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cfg.io_threads.max(1))
            .thread_name("aligndata-openai")
            .enable_all()
            .build()
            .context("starting the HTTP runtime")?;
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(cfg.connect_timeout)
            .pool_max_idle_per_host(cfg.max_concurrency.max(1))
            .build()
            .context("building the HTTP client")?;
        let model_id = format!(
            "openai:{}:{}",
            cfg.base_url.trim_end_matches('/'),
            cfg.model
        );
        let http1 = if super::http1::usable(&cfg.base_url) {
            Some(super::http1::Http1::new(
                &cfg.base_url,
                cfg.max_concurrency.max(1),
                cfg.connect_timeout,
            )?)
        } else {
            None
        };
        let shared = Arc::new(Shared {
            client,
            http1,
            key,
            sem: tokio::sync::Semaphore::new(cfg.max_concurrency.max(1)),
            breaker: Breaker {
                state: Mutex::new(BreakerState::default()),
                threshold: cfg.breaker_threshold.max(1),
                cooldown: cfg.breaker_cooldown,
                openings: AtomicU64::new(0),
            },
            c: Counters::default(),
            cfg,
        });
        Ok(Self {
            shared,
            rt,
            model_id,
        })
    }
}

impl Shared {
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self.cfg.backoff_base.as_secs_f64() * 2f64.powi(attempt.min(30) as i32);
        let capped = base.min(self.cfg.backoff_max.as_secs_f64());
        Duration::from_secs_f64(capped * rand::rng().random_range(0.5..=1.0))
    }

    fn body(&self, req: &CompletionRequest, json_fix: Option<&str>) -> (bool, serde_json::Value) {
        let mut b = json!({
            "model": self.cfg.model,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "seed": req.seed,
        });
        if !req.stop.is_empty() {
            b["stop"] = json!(req.stop);
        }
        let chat = match &req.raw_prompt {
            Some(p) => {
                b["prompt"] = json!(p);
                false
            }
            None => {
                let mut msgs = json!(req.messages);
                if let (Some(bad), Some(arr)) = (json_fix, msgs.as_array_mut()) {
                    arr.push(json!({"role": "assistant", "content": bad}));
                    arr.push(json!({"role": "user", "content":
                        "That reply was not valid JSON. Reply again with exactly one valid JSON object and nothing else."}));
                }
                b["messages"] = msgs;
                if req.json_mode {
                    b["response_format"] = json!({"type": "json_object"});
                }
                true
            }
        };
        (chat, b)
    }

    async fn send(
        &self,
        chat: bool,
        body: &serde_json::Value,
    ) -> std::result::Result<(String, FinishReason, Usage), Fail> {
        let url = format!(
            "{}/{}",
            self.cfg.base_url.trim_end_matches('/'),
            if chat {
                "chat/completions"
            } else {
                "completions"
            }
        );
        let (status, headers, bytes) = match &self.http1 {
            Some(h) => {
                let payload = serde_json::to_vec(body)
                    .map_err(|e| Fail::Fatal(anyhow!("bad request to {url}: {e}")))?;
                let path = if chat {
                    "chat/completions"
                } else {
                    "completions"
                };
                let sent = tokio::time::timeout(
                    self.cfg.request_timeout,
                    h.post_json(path, self.key.as_deref(), &payload),
                )
                .await;
                let r = match sent {
                    Ok(Ok(r)) => r,
                    Ok(Err(e)) => return Err(Fail::Retry(anyhow!("POST {url}: {e:#}"), None)),
                    Err(_) => {
                        return Err(Fail::Retry(
                            anyhow!(
                                "POST {url}: no complete answer within {:?}",
                                self.cfg.request_timeout
                            ),
                            None,
                        ));
                    }
                };
                let status = reqwest::StatusCode::from_u16(r.status).map_err(|_| {
                    Fail::Retry(
                        anyhow!("POST {url}: invalid HTTP status {}", r.status),
                        None,
                    )
                })?;
                (status, r.headers, bytes::Bytes::from(r.body))
            }
            None => {
                let mut rb = self.client.post(&url).json(body);
                if let Some(k) = &self.key {
                    rb = rb.bearer_auth(k);
                }
                let resp = match rb.send().await {
                    Ok(r) => r,
                    Err(e) if e.is_builder() => {
                        return Err(Fail::Fatal(anyhow!("bad request to {url}: {e}")));
                    }
                    Err(e) => return Err(Fail::Retry(anyhow!("POST {url}: {e}"), None)),
                };
                let status = resp.status();
                let headers = resp.headers().clone();
                let bytes = match resp.bytes().await {
                    Ok(b) => b,
                    Err(_) if !status.is_success() => Default::default(),
                    Err(e) => {
                        return Err(Fail::Retry(anyhow!("POST {url}: reading body: {e}"), None));
                    }
                };
                (status, headers, bytes)
            }
        };
        if !status.is_success() {
            let ra = parse_retry_after(&headers);
            let text: String = String::from_utf8_lossy(&bytes).chars().take(300).collect();
            let err = anyhow!("POST {url}: HTTP {status}: {text}");
            return if status.as_u16() == 429 || status.as_u16() == 408 || status.is_server_error() {
                Err(Fail::Retry(err, ra))
            } else {
                Err(Fail::Fatal(err))
            };
        }
        let parsed: Resp = serde_json::from_slice(&bytes)
            .map_err(|e| Fail::Retry(anyhow!("POST {url}: malformed response: {e}"), None))?;
        let choice =
            parsed.choices.into_iter().next().ok_or_else(|| {
                Fail::Retry(anyhow!("POST {url}: response without choices"), None)
            })?;
        let text = match (choice.message.and_then(|m| m.content), choice.text) {
            (Some(t), _) | (None, Some(t)) => t,
            (None, None) => String::new(),
        };
        let finish = match choice.finish_reason.as_deref() {
            Some("length") => FinishReason::Length,
            _ => FinishReason::Stop,
        };
        let usage = parsed
            .usage
            .map(|u| Usage {
                prompt_tokens: u.prompt_tokens as u32,
                completion_tokens: u.completion_tokens as u32,
            })
            .unwrap_or_default();
        Ok((text, finish, usage))
    }

    async fn complete_one(&self, req: &CompletionRequest) -> Result<Completion> {
        let mut attempt = 0u32;
        let mut json_fix: Option<String> = None;
        loop {
            let (chat, body) = self.body(req, json_fix.as_deref());
            let gate = self.breaker.enter().await;
            let outcome = {
                let _permit = self
                    .sem
                    .acquire()
                    .await
                    .map_err(|_| anyhow!("client shut down"))?;
                self.c.requests.fetch_add(1, Ordering::Relaxed);
                self.send(chat, &body).await
            };
            match outcome {
                Ok((text, finish_reason, usage)) => {
                    self.breaker.success();
                    self.c
                        .prompt_tokens
                        .fetch_add(usage.prompt_tokens as u64, Ordering::Relaxed);
                    self.c
                        .completion_tokens
                        .fetch_add(usage.completion_tokens as u64, Ordering::Relaxed);
                    let mut text = text;
                    if req.json_mode {
                        match repair_json(&text) {
                            Some(fixed) => {
                                if fixed != text {
                                    self.c.json_repairs.fetch_add(1, Ordering::Relaxed);
                                }
                                text = fixed;
                            }
                            None if json_fix.is_none() && chat => {
                                self.c.json_retries.fetch_add(1, Ordering::Relaxed);
                                json_fix = Some(text);
                                continue;
                            }
                            None => {
                                self.c.failures.fetch_add(1, Ordering::Relaxed);
                                return Err(anyhow!(
                                    "reply is not valid JSON even after a retry: {:.200}",
                                    text
                                ));
                            }
                        }
                    }
                    let mut finish_reason = finish_reason;
                    if let Some(n) = req.stop_after_line
                        && super::cut_after_line(&mut text, n, 0)
                    {
                        finish_reason = FinishReason::Stop;
                    }
                    return Ok(Completion {
                        text,
                        finish_reason,
                        usage,
                        cached: false,
                    });
                }
                Err(Fail::Fatal(e)) => {
                    // The server answered: it is alive, whatever it thinks of the request.
                    self.breaker.success();
                    self.c.failures.fetch_add(1, Ordering::Relaxed);
                    return Err(e);
                }
                Err(Fail::Retry(e, retry_after)) => {
                    self.breaker.failure(&gate);
                    if attempt >= self.cfg.max_retries {
                        self.c.failures.fetch_add(1, Ordering::Relaxed);
                        return Err(e.context(format!("giving up after {} attempts", attempt + 1)));
                    }
                    self.c.retries.fetch_add(1, Ordering::Relaxed);
                    let delay = match retry_after {
                        Some(d) => d.min(self.cfg.max_retry_after),
                        None => self.backoff(attempt),
                    };
                    attempt += 1;
                    tokio::time::sleep(delay).await;
                }
            }
        }
    }
}

impl Llm for OpenAiLlm {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn stats(&self) -> Stats {
        let c = &self.shared.c;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (p, q) = (g(&c.prompt_tokens), g(&c.completion_tokens));
        Stats {
            requests: g(&c.requests),
            retries: g(&c.retries),
            failures: g(&c.failures),
            breaker_openings: self.shared.breaker.openings.load(Ordering::Relaxed),
            json_repairs: g(&c.json_repairs),
            json_retries: g(&c.json_retries),
            prompt_tokens: p,
            completion_tokens: q,
            cost: p as f64 / 1000.0 * self.shared.cfg.price_prompt_per_1k
                + q as f64 / 1000.0 * self.shared.cfg.price_completion_per_1k,
            ..Stats::default()
        }
    }

    fn complete_each(
        &self,
        requests: &[CompletionRequest],
        on_result: &mut dyn FnMut(usize, &Result<Completion>),
    ) -> Vec<Result<Completion>> {
        let n = requests.len();
        let mut results: Vec<Option<Result<Completion>>> = (0..n).map(|_| None).collect();
        let reqs: Arc<[CompletionRequest]> = requests.to_vec().into();
        let window = self.shared.cfg.max_concurrency.max(1);
        self.rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            let mut next = 0usize;
            let spawn = |set: &mut tokio::task::JoinSet<(usize, Result<Completion>)>, i: usize| {
                let shared = self.shared.clone();
                let reqs = reqs.clone();
                set.spawn(async move { (i, shared.complete_one(&reqs[i]).await) });
            };
            while next < n && set.len() < window {
                spawn(&mut set, next);
                next += 1;
            }
            while let Some(joined) = set.join_next().await {
                if let Ok((i, r)) = joined {
                    on_result(i, &r);
                    results[i] = Some(r);
                }
                if next < n {
                    spawn(&mut set, next);
                    next += 1;
                }
            }
        });
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(anyhow!("request task panicked"))))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_repair() {
        assert_eq!(repair_json(r#"{"a": 1}"#).as_deref(), Some(r#"{"a": 1}"#));
        assert_eq!(
            repair_json("```json\n{\"a\": [1, 2,], }\n```").as_deref(),
            Some("{\"a\": [1, 2] }")
        );
        assert_eq!(
            repair_json("Sure! {\"a\": \"}\"} hope this helps").as_deref(),
            Some("{\"a\": \"}\"}")
        );
        assert_eq!(repair_json("no json here"), None);
        assert_eq!(repair_json("{\"a\": "), None);
    }

    #[test]
    fn retry_after_forms() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("retry-after", "2".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        let later = SystemTime::now() + Duration::from_secs(30);
        h.insert(
            "retry-after",
            httpdate::fmt_http_date(later).parse().unwrap(),
        );
        let d = parse_retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(25) && d <= Duration::from_secs(30),
            "{d:?}"
        );
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
        h.insert("retry-after-ms", "250".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_millis(250)));
    }
}
