//! Tests of the LLM backends: SmolLM2 in-process, the OpenAI client against a misbehaving local
//! server, and the cache's "kill -9, rerun: nothing lost, nothing repeated" property.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use super::*;

// ---------------------------------------------------------------------------------------------
// Local (SmolLM2-135M Q4_1)
// ---------------------------------------------------------------------------------------------

/// The test GGUF: `ALIGNDATA_TEST_GGUF`, else the registry's SmolLM2 (installed if missing).
pub(crate) fn test_gguf() -> PathBuf {
    if let Some(p) = std::env::var_os("ALIGNDATA_TEST_GGUF").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    match crate::registry::ensure("smollm2-135m", false, &|_| {}) {
        Ok(p) => p,
        Err(e) => panic!("SmolLM2 GGUF unavailable ({e:#}); set ALIGNDATA_TEST_GGUF to its path"),
    }
}

fn smol() -> &'static LocalLlm {
    static M: OnceLock<LocalLlm> = OnceLock::new();
    M.get_or_init(
        || match LocalLlm::load(&test_gguf(), LocalConfig::default()) {
            Ok(m) => m,
            Err(e) => panic!("loading SmolLM2: {e:#}"),
        },
    )
}

/// SmolLM2 with the f32 path off: bit-identical output alone and in a batch.
fn smol_exact() -> &'static LocalLlm {
    static M: OnceLock<LocalLlm> = OnceLock::new();
    M.get_or_init(|| {
        match LocalLlm::load(
            &test_gguf(),
            LocalConfig {
                dense_min_rows: 0,
                ..LocalConfig::default()
            },
        ) {
            Ok(m) => m,
            Err(e) => panic!("loading SmolLM2: {e:#}"),
        }
    })
}

fn ask(q: &str, seed: u64, temperature: f32, max_tokens: u32) -> CompletionRequest {
    CompletionRequest {
        messages: vec![ChatMessage::user(q)],
        temperature,
        top_p: 0.9,
        max_tokens,
        seed,
        ..Default::default()
    }
}

#[test]
fn gguf_tokenizer_round_trips() {
    let m = smol();
    let s = "Hello, world! I've been feeling anxious about 2025's exams — naïve café.";
    let ids = m.encode(s).unwrap();
    assert!(ids.len() > 5 && ids.len() < s.len());
    assert_eq!(m.decode(&ids).unwrap(), s);
    // Chat markers are single special tokens; digits split one by one (SmolLM2 pre-tokenizer).
    assert_eq!(m.encode("<|im_start|>").unwrap().len(), 1);
    assert_eq!(m.encode("2025").unwrap().len(), 4);
    let prompt = m.render_prompt(&ask("Hi", 0, 0.0, 1)).unwrap();
    assert!(
        prompt.contains("<|im_start|>user\nHi<|im_end|>"),
        "{prompt}"
    );
    assert!(prompt.ends_with("<|im_start|>assistant\n"), "{prompt}");
}

#[test]
fn local_chat_is_deterministic_and_batch_invariant() {
    let reqs = vec![
        ask("What is the capital of France?", 1, 0.0, 24),
        ask("Write one sentence about the sea.", 7, 0.8, 24),
        ask("I feel lonely lately. Any advice?", 3, 0.7, 24),
        ask("Count from one to five.", 5, 0.0, 24),
    ];
    // Exact mode: each request's batched output equals its batch-1 output.
    let m = smol_exact();
    let batched = m.complete_batch(&reqs, &|_| {});
    for (i, r) in reqs.iter().enumerate() {
        let b = batched[i].as_ref().unwrap();
        assert!(
            !b.text.trim().is_empty(),
            "empty answer to {:?}",
            r.messages
        );
        let alone = m.complete_batch(std::slice::from_ref(r), &|_| {});
        let alone = alone[0].as_ref().unwrap();
        assert_eq!(
            alone.text, b.text,
            "batched output differs from batch-1 for request {i}"
        );
        assert!(b.usage.completion_tokens <= 24);
    }
    // The quantized kernels compute what llama.cpp computes: its greedy answer to the same
    // rendered prompt (llama-cpp-python 0.3.16, same GGUF, `scripts/bench_llm_llamacpp.py`,
    // `first_ids`) begins "L'Étoile, la Cité, la Nation" (this small model does not say Paris);
    // ours agrees up to "la Cité, la" and then continues differently (activation rounding).
    let greedy = &batched[0].as_ref().unwrap().text;
    assert!(greedy.starts_with("L'Étoile, la Cité,"), "{greedy:?}");
    // Default (fast) mode: the same batch and seeds give the same texts.
    let m = smol();
    let a = m.complete_batch(&reqs, &|_| {});
    let b = m.complete_batch(&reqs, &|_| {});
    for (x, y) in a.iter().zip(&b) {
        let (x, y) = (x.as_ref().unwrap(), y.as_ref().unwrap());
        assert!(!x.text.trim().is_empty());
        assert_eq!(x.text, y.text);
    }
}

#[test]
fn local_stop_and_max_tokens() {
    let m = smol();
    let base = ask("Count from one to ten.", 0, 0.0, 40);
    let free = m.complete_batch(std::slice::from_ref(&base), &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert!(free.text.chars().count() > 8, "{free:?}");
    // A stop string taken from the middle of the free-running (greedy) answer.
    let mid: String = free
        .text
        .chars()
        .skip(free.text.chars().count() / 2)
        .take(2)
        .collect();
    let expected = &free.text[..free.text.find(&mid).unwrap()];
    let stopped = CompletionRequest {
        stop: vec!["@@never@@".into(), mid.clone()],
        ..base.clone()
    };
    let s = m.complete_batch(&[stopped], &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(s.text, expected, "stop {mid:?}");
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert!(s.usage.completion_tokens < free.usage.completion_tokens);
    let short = CompletionRequest {
        max_tokens: 3,
        ..base.clone()
    };
    let s = m.complete_batch(&[short], &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(s.usage.completion_tokens, 3);
    assert_eq!(s.finish_reason, FinishReason::Length);
    // A raw continuation prompt, no template.
    let raw = CompletionRequest {
        max_tokens: 8,
        temperature: 0.0,
        ..CompletionRequest::raw("The capital of France is")
    };
    let r = m.complete_batch(&[raw], &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert!(!r.text.is_empty());
}

// ---------------------------------------------------------------------------------------------
// A scriptable OpenAI-compatible test server
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
pub(crate) enum Action {
    Ok,
    /// Status code, optional Retry-After header value.
    Status(u16, Option<String>),
    /// Sleep, then answer normally.
    Sleep(Duration),
    Malformed,
    /// Send the body in pieces with a pause between them.
    SlowBody(Duration),
    /// Answer with this content.
    Content(String),
}

type Script = dyn Fn(&str, u32, u64) -> Action + Send + Sync;

pub(crate) struct Server {
    pub url: String,
    /// Per key (last message content or prompt): arrival times.
    pub log: Mutex<HashMap<String, Vec<Instant>>>,
    pub total: AtomicU64,
    script: Box<Script>,
}

impl Server {
    pub fn count(&self, key: &str) -> usize {
        self.log.lock().unwrap().get(key).map_or(0, |v| v.len())
    }
    pub fn arrivals(&self, key: &str) -> Vec<Instant> {
        self.log
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .unwrap_or_default()
    }
}

fn ok_body(content: &str) -> String {
    serde_json::json!({
        "id": "x", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "text": content, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
    })
    .to_string()
}

async fn handle(
    axum::extract::State(s): axum::extract::State<Arc<Server>>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = v["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .or_else(|| v["prompt"].as_str())
        .unwrap_or("")
        .to_string();
    let attempt = {
        let mut log = s.log.lock().unwrap();
        let e = log.entry(key.clone()).or_default();
        e.push(Instant::now());
        e.len() as u32
    };
    let n = s.total.fetch_add(1, Ordering::SeqCst);
    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
    match (s.script)(&key, attempt, n) {
        Action::Ok => (json, ok_body(&format!("echo: {key}"))).into_response(),
        Action::Content(c) => (json, ok_body(&c)).into_response(),
        Action::Status(code, ra) => {
            let mut r = (
                axum::http::StatusCode::from_u16(code).unwrap(),
                "injected failure",
            )
                .into_response();
            if let Some(ra) = ra {
                r.headers_mut().insert("retry-after", ra.parse().unwrap());
            }
            r
        }
        Action::Sleep(d) => {
            tokio::time::sleep(d).await;
            (json, ok_body(&format!("echo: {key}"))).into_response()
        }
        Action::Malformed => (json, "{\"choices\": [{\"message\": ").into_response(),
        Action::SlowBody(pause) => {
            let full = ok_body(&format!("echo: {key}")).into_bytes();
            let chunks: Vec<Vec<u8>> = full.chunks(16).map(|c| c.to_vec()).collect();
            let stream = futures_util::stream::unfold(
                (chunks.into_iter(), true),
                move |(mut it, first)| async move {
                    if !first {
                        tokio::time::sleep(pause).await;
                    }
                    it.next().map(|c| {
                        (
                            Ok::<_, std::io::Error>(axum::body::Bytes::from(c)),
                            (it, false),
                        )
                    })
                },
            );
            (json, axum::body::Body::from_stream(stream)).into_response()
        }
    }
}

/// Starts a server on loopback in a background thread; it lives until the process exits.
pub(crate) fn start_server(
    script: impl Fn(&str, u32, u64) -> Action + Send + Sync + 'static,
) -> Arc<Server> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let server = Arc::new(Server {
        url,
        log: Mutex::default(),
        total: AtomicU64::new(0),
        script: Box::new(script),
    });
    let s = server.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/v1/chat/completions", axum::routing::post(handle))
                .route("/v1/completions", axum::routing::post(handle))
                .with_state(s);
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(l, app).await.unwrap();
        });
    });
    server
}

fn client(url: &str, f: impl FnOnce(&mut OpenAiConfig)) -> OpenAiLlm {
    let mut cfg = OpenAiConfig {
        base_url: url.to_string(),
        model: "test".into(),
        api_key_env: None,
        max_concurrency: 8,
        request_timeout: Duration::from_secs(5),
        backoff_base: Duration::from_millis(5),
        backoff_max: Duration::from_millis(50),
        breaker_threshold: 1000,
        breaker_cooldown: Duration::from_millis(100),
        ..Default::default()
    };
    f(&mut cfg);
    OpenAiLlm::new(cfg).unwrap()
}

fn user(q: &str) -> CompletionRequest {
    CompletionRequest::chat(vec![ChatMessage::user(q)])
}

#[test]
fn openai_retries_honour_retry_after_and_recover_from_every_fault() {
    let server = start_server(|key, attempt, _| match (key, attempt) {
        ("ra", 1) => Action::Status(429, Some("1".into())),
        ("ra", 2) => Action::Status(503, None),
        ("timeout", 1) => Action::Sleep(Duration::from_secs(3)),
        ("malformed", 1) => Action::Malformed,
        ("slow", _) => Action::SlowBody(Duration::from_millis(20)),
        ("bad", _) => Action::Status(400, None),
        _ => Action::Ok,
    });
    let llm = client(&server.url, |c| {
        c.request_timeout = Duration::from_millis(1500)
    });
    let reqs: Vec<_> = ["ra", "timeout", "malformed", "slow", "plain", "bad"]
        .iter()
        .map(|k| user(k))
        .collect();
    let mut seen = Vec::new();
    let out = llm.complete_each(&reqs, &mut |i, r| seen.push((i, r.is_ok())));
    assert_eq!(seen.len(), 6);
    for (i, k) in ["ra", "timeout", "malformed", "slow", "plain"]
        .iter()
        .enumerate()
    {
        assert_eq!(out[i].as_ref().unwrap().text, format!("echo: {k}"));
    }
    assert!(out[5].is_err(), "a 400 is not retried");
    assert_eq!(server.count("ra"), 3);
    assert_eq!(server.count("timeout"), 2);
    assert_eq!(server.count("malformed"), 2);
    assert_eq!(server.count("bad"), 1);
    // Retry-After: 1 s was waited before the second attempt (a lower bound: never flaky).
    let t = server.arrivals("ra");
    assert!(
        t[1] - t[0] >= Duration::from_millis(950),
        "{:?}",
        t[1] - t[0]
    );
    let s = llm.stats();
    assert_eq!(s.retries, 4);
    assert_eq!(s.failures, 1);
    assert_eq!(s.requests, 10);
    assert_eq!(s.prompt_tokens, 25);
}

#[test]
fn openai_breaker_opens_pauses_and_resumes() {
    // The first 10 requests to arrive fail; then the server recovers.
    let server = start_server(|_, _, n| {
        if n < 10 {
            Action::Status(500, None)
        } else {
            Action::Ok
        }
    });
    let llm = client(&server.url, |c| {
        c.max_concurrency = 1;
        c.max_retries = 50;
        c.breaker_threshold = 3;
        c.breaker_cooldown = Duration::from_millis(150);
    });
    let reqs: Vec<_> = (0..5).map(|i| user(&format!("q{i}"))).collect();
    let out = llm.complete_batch(&reqs, &|_| {});
    assert!(out.iter().all(|r| r.is_ok()));
    let s = llm.stats();
    // 3 failures open it; each of the next 7 failures is a half-open probe that re-opens it.
    assert_eq!(s.breaker_openings, 8, "{s}");
    assert_eq!(server.total.load(Ordering::SeqCst), 15);
    // While open, nothing reaches the server: probes are at least a cool-down apart.
    let mut all: Vec<Instant> = server
        .log
        .lock()
        .unwrap()
        .values()
        .flatten()
        .copied()
        .collect();
    all.sort();
    for w in all[2..10].windows(2) {
        assert!(
            w[1] - w[0] >= Duration::from_millis(140),
            "{:?}",
            w[1] - w[0]
        );
    }
}

#[test]
fn openai_thirty_percent_failures_still_complete_everything() {
    let server = start_server(|key, attempt, _| {
        // Seeded pseudo-random faults per (key, attempt): ~30% of attempts fail.
        let h = xxhash_rust::xxh3::xxh3_64(format!("{key}/{attempt}").as_bytes());
        match h % 100 {
            0..=9 => Action::Status(500, None),
            10..=17 => Action::Status(429, Some("0".into())),
            18..=24 => Action::Malformed,
            25..=29 => Action::Status(502, None),
            _ => Action::Ok,
        }
    });
    let llm = client(&server.url, |c| {
        c.max_concurrency = 16;
        c.max_retries = 20;
        c.breaker_threshold = 20;
        c.breaker_cooldown = Duration::from_millis(20);
    });
    let reqs: Vec<_> = (0..300).map(|i| user(&format!("r{i}"))).collect();
    let out = llm.complete_batch(&reqs, &|_| {});
    assert_eq!(out.iter().filter(|r| r.is_ok()).count(), 300);
    let s = llm.stats();
    assert!(s.retries > 40, "{s}");
    assert_eq!(s.failures, 0);
}

#[test]
fn openai_json_mode_repairs_and_re_asks() {
    let server = start_server(|key, attempt, _| match (key, attempt) {
        ("fenced", _) => Action::Content("Here you go:\n```json\n{\"a\": [1, 2,],}\n```".into()),
        (k, 1) if k.starts_with("garbage") => Action::Content("I cannot do JSON, sorry".into()),
        (_, _) => Action::Content("{\"ok\": true}".into()),
    });
    let llm = client(&server.url, |_| {});
    let mk = |k: &str| CompletionRequest {
        json_mode: true,
        ..user(k)
    };
    let out = llm.complete_batch(&[mk("fenced"), mk("garbage")], &|_| {});
    assert_eq!(out[0].as_ref().unwrap().text, "{\"a\": [1, 2]}");
    assert_eq!(out[1].as_ref().unwrap().text, "{\"ok\": true}");
    let s = llm.stats();
    assert_eq!((s.json_repairs, s.json_retries), (1, 1));
}

#[test]
fn cache_reuses_and_recomputes_only_changed_requests() {
    let server = start_server(|_, _, _| Action::Ok);
    let dir = tempfile::tempdir().unwrap();
    let reqs: Vec<_> = (0..20).map(|i| user(&format!("c{i}"))).collect();
    {
        let llm = CachedLlm::new(client(&server.url, |_| {}), dir.path()).unwrap();
        let out = llm.complete_batch(&reqs, &|_| {});
        assert!(out.iter().all(|r| r.as_ref().is_ok_and(|c| !c.cached)));
    }
    let llm = CachedLlm::new(client(&server.url, |_| {}), dir.path()).unwrap();
    let mut changed = reqs.clone();
    changed[3].seed = 99;
    changed.push(changed[5].clone()); // a duplicate within the batch
    let out = llm.complete_batch(&changed, &|_| {});
    assert_eq!(
        out.iter().filter(|r| r.as_ref().unwrap().cached).count(),
        20
    );
    assert_eq!(server.count("c3"), 2);
    assert_eq!(server.count("c5"), 1);
    assert_eq!(server.total.load(Ordering::SeqCst), 21);
    assert_eq!(llm.stats().cache_hits, 20);
}

// ---------------------------------------------------------------------------------------------
// kill -9 mid-run, rerun: nothing lost, nothing repeated
// ---------------------------------------------------------------------------------------------

const CHILD_ENV: &str = "ALIGNDATA_LLM_KILL_CHILD";
const N_KILL: usize = 200;
const KILL_CONCURRENCY: usize = 4;

fn kill_requests() -> Vec<CompletionRequest> {
    (0..N_KILL).map(|i| user(&format!("k{i}"))).collect()
}

/// The child: runs the whole batch through the cache against the parent's server. A no-op
/// unless started by `kill_9_mid_run_loses_nothing_and_repeats_nothing`.
#[test]
fn kill_child() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (url, dir) = spec.split_once('|').unwrap();
    let llm = CachedLlm::new(
        client(url, |c| c.max_concurrency = KILL_CONCURRENCY),
        std::path::Path::new(dir),
    )
    .unwrap();
    let out = llm.complete_batch(&kill_requests(), &|_| {});
    assert!(out.iter().all(|r| r.is_ok()));
}

#[test]
fn kill_9_mid_run_loses_nothing_and_repeats_nothing() {
    let server = start_server(|_, _, _| Action::Sleep(Duration::from_millis(15)));
    let dir = tempfile::tempdir().unwrap();
    let spawn = || {
        std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "llm::tests::kill_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(
                CHILD_ENV,
                format!("{}|{}", server.url, dir.path().display()),
            )
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let lines = || -> usize {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| std::fs::read(e.unwrap().path()).ok())
            .map(|b| b.iter().filter(|&&c| c == b'\n').count())
            .sum()
    };
    let mut child = spawn();
    let t0 = Instant::now();
    while lines() < 60 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "child made no progress"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // What the cache acknowledged before the kill.
    let model_id = client(&server.url, |_| {}).model_id().to_string();
    let reqs = kill_requests();
    let store = cache::CacheStore::open(dir.path()).unwrap();
    let acked: Vec<bool> = reqs
        .iter()
        .map(|r| store.get(&cache::cache_key(&model_id, r)).is_some())
        .collect();
    drop(store);
    let n_acked = acked.iter().filter(|&&a| a).count();
    assert!((60..N_KILL).contains(&n_acked), "{n_acked}");
    let sent_before = server.total.load(Ordering::SeqCst) as usize;
    assert!(
        sent_before - n_acked <= KILL_CONCURRENCY,
        "only in-flight requests are unacknowledged"
    );

    let status = spawn().wait().unwrap();
    assert!(status.success());
    let store = cache::CacheStore::open(dir.path()).unwrap();
    for (i, r) in reqs.iter().enumerate() {
        let key = format!("k{i}");
        assert!(
            store.get(&cache::cache_key(&model_id, r)).is_some(),
            "result {i} lost"
        );
        let n = server.count(&key);
        if acked[i] {
            assert_eq!(n, 1, "acknowledged request {i} was sent again");
        } else {
            assert!((1..=2).contains(&n), "request {i} sent {n} times");
        }
    }
    let total = server.total.load(Ordering::SeqCst) as usize;
    assert!(
        total - N_KILL <= KILL_CONCURRENCY,
        "{total} sends for {N_KILL} requests"
    );
}

/// `stop_after_line` ends a continuation at the end of its first line of enough words (what a
/// one-line answer needs, nothing after it), and `require_text` keeps a reply from ending before
/// its first character.
#[test]
fn local_line_stop_and_require_text() {
    let m = smol();
    let list = CompletionRequest {
        max_tokens: 60,
        temperature: 0.0,
        ..CompletionRequest::raw(
            "Things people said at the support group, one per line:\n\
             - I always think my work is not good enough.\n\
             - My hands shake before every meeting.\n-",
        )
    };
    let free = m.complete_batch(std::slice::from_ref(&list), &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    let lines = free
        .text
        .lines()
        .filter(|l| l.split_whitespace().count() >= 3)
        .count();
    assert!(
        lines >= 2,
        "the free run should write several lines: {free:?}"
    );
    let line_stop = CompletionRequest {
        stop_after_line: Some(3),
        ..list.clone()
    };
    let s = m.complete_batch(&[line_stop], &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert!(free.text.starts_with(&s.text), "{s:?} vs {free:?}");
    assert!(!s.text.trim_start().contains('\n'), "{s:?}");
    assert!(s.text.split_whitespace().count() >= 3, "{s:?}");
    assert_eq!(s.finish_reason, FinishReason::Stop);
    assert!(s.usage.completion_tokens < free.usage.completion_tokens);

    // A finished assistant turn: greedily the model ends at once.
    let done = CompletionRequest {
        max_tokens: 20,
        temperature: 0.0,
        ..CompletionRequest::raw(
            "<|im_start|>user\nThanks!<|im_end|>\n<|im_start|>assistant\nYou're welcome!<|im_end|>",
        )
    };
    let free = m.complete_batch(std::slice::from_ref(&done), &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    let forced = CompletionRequest {
        require_text: true,
        ..done.clone()
    };
    let f = m.complete_batch(&[forced], &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert!(free.text.trim().is_empty(), "{free:?}");
    assert!(!f.text.trim().is_empty(), "{f:?}");

    // Its first token is a newline: with "\n" as a stop string the reply is empty, unless text
    // is required, when that token is masked and another sampled.
    let stop_first = CompletionRequest {
        stop: vec!["\n".into()],
        ..done
    };
    let s = m.complete_batch(std::slice::from_ref(&stop_first), &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert_eq!(s.text, "", "{s:?}");
    let forced = CompletionRequest {
        require_text: true,
        ..stop_first
    };
    let f = m.complete_batch(&[forced], &|_| {})[0]
        .as_ref()
        .unwrap()
        .clone();
    assert!(!f.text.trim().is_empty(), "{f:?}");
}
