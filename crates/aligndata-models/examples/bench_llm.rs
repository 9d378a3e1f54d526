//! Benchmarks of the LLM backends.
//!
//! `cargo run --release -p aligndata-models --example bench_llm -- local [--gguf PATH]
//!     [--new-tokens 128] [--batch 16] [--b1-prompts 2] [--dense-min-rows 4] [--llamacpp]`
//!   Local generation with SmolLM2 (greedy, EOS ignored so every sequence generates exactly
//!   `--new-tokens`): prompt tokens/s and generation tokens/s at batch 1 and batch N. With
//!   `--llamacpp`, runs `scripts/bench_llm_llamacpp.py` on the same GGUF, prompts and thread count
//!   and prints the ratios, each side's CPU share ("CPUs busy": on a shared machine, whether the
//!   wall-clock figures mean anything) and how often both sides' greedy continuations agree.
//!   Threads: `RAYON_NUM_THREADS` (default: all cores).
//!
//! `cargo run --release -p aligndata-models --example bench_llm -- openai [--requests 20000]
//!     [--concurrency 256] [--inflight 10000]`
//!   The OpenAI client against a local server running in a child process: requests/s against an
//!   instant server, then resident memory of the client with `--inflight` requests in flight
//!   (the server holds each for 5 s).
#![allow(clippy::print_stdout)]

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aligndata_models::llm::{
    ChatMessage, CompletionRequest, Llm, LocalConfig, LocalLlm, OpenAiConfig, OpenAiLlm,
};
use anyhow::{Context, Result, bail};

fn arg<T: std::str::FromStr>(args: &[String], name: &str, default: T) -> T {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) this process has used: beside wall-clock figures taken on a busy
/// machine, it shows how much of the time the benchmark actually had the cores.
fn cpu_s() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(11) + tick(12)) / 100.0
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

const QUESTIONS: [&str; 16] = [
    "What is the capital of France?",
    "Write a short poem about the sea at night.",
    "I have been feeling lonely since I moved to a new city. What could I do to meet people?",
    "Explain photosynthesis to a ten-year-old.",
    "Give me three tips for sleeping better.",
    "My exam is tomorrow and I am panicking. Help me calm down.",
    "What are the health benefits of walking every day?",
    "Summarise the plot of Romeo and Juliet in a few sentences.",
    "How do I politely tell a friend that they hurt my feelings?",
    "List some healthy breakfast ideas.",
    "Why is the sky blue?",
    "I lost my job last week and I do not know what to tell my family. Any advice?",
    "Describe a peaceful place in nature.",
    "What is a good way to start journaling?",
    "Tell me a fun fact about octopuses.",
    "How can I support a friend who is grieving?",
];

fn bench_local(args: &[String]) -> Result<()> {
    let gguf: PathBuf = match args
        .iter()
        .position(|a| a == "--gguf")
        .and_then(|i| args.get(i + 1))
    {
        Some(p) => PathBuf::from(p),
        None => match std::env::var_os("ALIGNDATA_TEST_GGUF") {
            Some(p) => PathBuf::from(p),
            None => {
                aligndata_models::registry::ensure("smollm2-135m", false, &|m| eprintln!("{m}"))?
            }
        },
    };
    let new_tokens: u32 = arg(args, "--new-tokens", 128);
    let batch: usize = arg(args, "--batch", 16);
    let b1_prompts: usize = arg(args, "--b1-prompts", 2);
    let dense_min_rows: usize = arg(
        args,
        "--dense-min-rows",
        LocalConfig::default().dense_min_rows,
    );
    let cfg = |max_batch: usize| LocalConfig {
        max_batch,
        ignore_eos: true,
        dense_min_rows,
        ..Default::default()
    };
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let t = Instant::now();
    let mut llm = LocalLlm::load(&gguf, cfg(batch))?;
    println!(
        "loaded {} in {:.2}s ({} threads, load avg {})",
        gguf.display(),
        t.elapsed().as_secs_f64(),
        threads,
        load_avg()
    );

    let reqs: Vec<CompletionRequest> = QUESTIONS
        .iter()
        .cycle()
        .take(batch)
        .map(|q| CompletionRequest {
            messages: vec![ChatMessage::user(*q)],
            temperature: 0.0,
            max_tokens: new_tokens,
            ..Default::default()
        })
        .collect();
    let prompt_lens: Vec<usize> = reqs
        .iter()
        .map(|r| llm.prompt_tokens(r).map(|p| p.len()))
        .collect::<Result<_>>()?;
    let first: Vec<CompletionRequest> = reqs
        .iter()
        .map(|r| CompletionRequest {
            max_tokens: 1,
            ..r.clone()
        })
        .collect();
    let cpu = std::cell::Cell::new(0.0);
    let run = |llm: &LocalLlm, rs: &[CompletionRequest]| -> Result<(f64, Vec<String>)> {
        let t = Instant::now();
        let c = cpu_s();
        let out = llm.complete_batch(rs, &|_| {});
        let dt = t.elapsed().as_secs_f64();
        cpu.set(cpu.get() + cpu_s() - c);
        let texts = out
            .into_iter()
            .map(|r| r.map(|c| c.text))
            .collect::<Result<Vec<_>>>()?;
        Ok((dt, texts))
    };
    // Warm-up.
    run(&llm, &first[..1])?;

    // Batch 1: prompts one at a time.
    llm.set_config(cfg(1));
    cpu.set(0.0);
    let (mut tp, mut tf, mut ptoks) = (0.0, 0.0, 0usize);
    let mut first_text = String::new();
    for i in 0..b1_prompts.min(reqs.len()) {
        tp += run(&llm, &first[i..i + 1])?.0;
        let (dt, texts) = run(&llm, &reqs[i..i + 1])?;
        tf += dt;
        ptoks += prompt_lens[i];
        if i == 0 {
            first_text = texts[0].clone();
        }
    }
    let n1 = b1_prompts.min(reqs.len());
    let b1_prompt_tps = ptoks as f64 / tp;
    let b1_gen_tps = (n1 * (new_tokens as usize - 1)) as f64 / (tf - tp);
    let b1_e2e = (n1 * new_tokens as usize) as f64 / tf;
    let b1_cpu = cpu.get() / (tf + tp);

    // Batch N: all prompts together.
    llm.set_config(cfg(batch));
    cpu.set(0.0);
    let (tpb, _) = run(&llm, &first)?;
    let (tfb, batch_texts) = run(&llm, &reqs)?;
    let total_prompt: usize = prompt_lens.iter().sum();
    let bn_prompt_tps = total_prompt as f64 / tpb;
    let bn_gen_tps = (reqs.len() * (new_tokens as usize - 1)) as f64 / (tfb - tpb);
    let bn_e2e = (reqs.len() * new_tokens as usize) as f64 / tfb;
    let bn_cpu = cpu.get() / (tfb + tpb);
    println!("prompt lengths: {prompt_lens:?}");
    println!(
        "aligndata  batch 1 : prompt {b1_prompt_tps:7.1} tok/s  generation {b1_gen_tps:7.1} tok/s  (end-to-end {b1_e2e:.1} tok/s, {b1_cpu:.2} CPUs busy)"
    );
    println!(
        "aligndata  batch {batch}: prompt {bn_prompt_tps:7.1} tok/s  generation {bn_gen_tps:7.1} tok/s  (end-to-end {bn_e2e:.1} tok/s, {bn_cpu:.2} CPUs busy)"
    );
    println!(
        "first answer: {:?}",
        first_text.chars().take(120).collect::<String>()
    );
    println!("load avg after: {}  RSS {:.0} MB", load_avg(), rss_mb());

    if args.iter().any(|a| a == "--llamacpp") {
        let texts: Vec<String> = reqs
            .iter()
            .map(|r| llm.render_prompt(r))
            .collect::<Result<_>>()?;
        let tmp = tempfile::NamedTempFile::new()?;
        serde_json::to_writer(&tmp, &texts)?;
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/bench_llm_llamacpp.py");
        let out = std::process::Command::new("python3")
            .arg(&script)
            .args([
                "--model",
                &gguf.to_string_lossy(),
                "--prompts",
                &tmp.path().to_string_lossy(),
            ])
            .args([
                "--threads",
                &threads.to_string(),
                "--new-tokens",
                &new_tokens.to_string(),
            ])
            .args([
                "--batch",
                &batch.to_string(),
                "--b1-prompts",
                &b1_prompts.to_string(),
            ])
            .output()
            .context("running scripts/bench_llm_llamacpp.py")?;
        if !out.status.success() {
            bail!(
                "llama.cpp script failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or("{}");
        let v: serde_json::Value =
            serde_json::from_str(last).context("parsing the llama.cpp script's output")?;
        let g = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
        let bk = |s: &str| format!("b{batch}_{s}");
        println!(
            "llama.cpp  batch 1 : prompt {:7.1} tok/s  generation {:7.1} tok/s  ({:.2} CPUs busy decoding)",
            g("b1_prompt_tps"),
            g("b1_gen_tps"),
            g("b1_gen_cpu_s")
        );
        println!(
            "llama.cpp  batch {batch}: prompt {:7.1} tok/s  generation {:7.1} tok/s  ({:.2} CPUs busy decoding)",
            g(&bk("prompt_tps")),
            g(&bk("gen_tps")),
            g(&bk("gen_cpu_s"))
        );
        println!("llama.cpp prompt lengths: {}", v["prompt_tokens"]);
        if let Some(ids) = v["first_ids"].as_array() {
            let ids: Vec<u32> = ids
                .iter()
                .filter_map(|x| x.as_u64().map(|x| x as u32))
                .collect();
            println!("llama.cpp first answer: {:?}", llm.decode(&ids)?);
        }
        // Greedy agreement: does our continuation of each prompt start with llama.cpp's first
        // 8 and 32 tokens? (Activation rounding differs slightly, so long continuations may part.)
        if let Some(all) = v["batch_ids"].as_array() {
            let mut agree = [0usize; 2];
            for (ours, ids) in batch_texts.iter().zip(all) {
                let ids: Vec<u32> = ids
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_u64().map(|x| x as u32))
                            .collect()
                    })
                    .unwrap_or_default();
                for (k, n) in [8usize, 32].into_iter().enumerate() {
                    let theirs = llm.decode(&ids[..n.min(ids.len())])?;
                    agree[k] += usize::from(ours.starts_with(&theirs));
                }
            }
            println!(
                "greedy agreement with llama.cpp (batch {batch}): first 8 tokens identical for {}/{} prompts, first 32 for {}/{}",
                agree[0],
                all.len(),
                agree[1],
                all.len()
            );
        }
        println!(
            "ratio aligndata/llama.cpp: batch 1 prompt {:.2} generation {:.2}; batch {batch} prompt {:.2} generation {:.2}",
            b1_prompt_tps / g("b1_prompt_tps"),
            b1_gen_tps / g("b1_gen_tps"),
            bn_prompt_tps / g(&bk("prompt_tps")),
            bn_gen_tps / g(&bk("gen_tps")),
        );
        println!("load avg after: {}", load_avg());
    }
    Ok(())
}

/// A child-process server: instant answers, or answers held for `delay_ms`.
fn serve(delay_ms: u64) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let body: &'static str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1}}"#;
        let app = axum::Router::new().route(
            "/v1/chat/completions",
            axum::routing::post(move || async move {
                if delay_ms > 0 {
                    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                }
                ([(axum::http::header::CONTENT_TYPE, "application/json")], body)
            }),
        );
        // A listen backlog like production servers' (uvicorn: 2048; the kernel caps it at
        // net.core.somaxconn): tokio's default of 1024 resets connections when 10,000 arrive
        // at once.
        let sock = tokio::net::TcpSocket::new_v4()?;
        sock.bind("127.0.0.1:0".parse()?)?;
        let l = sock.listen(4096)?;
        println!("{}", l.local_addr()?.port());
        std::io::stdout().flush()?;
        axum::serve(l, app).await?;
        Ok(())
    })
}

fn spawn_server(delay_ms: u64) -> Result<(std::process::Child, String)> {
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", &delay_ms.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()?;
    let mut line = String::new();
    let stdout = child.stdout.take().context("server stdout")?;
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    Ok((child, format!("http://127.0.0.1:{}/v1", line.trim())))
}

fn bench_openai(args: &[String]) -> Result<()> {
    let n: usize = arg(args, "--requests", 20000);
    let conc: usize = arg(args, "--concurrency", 256);
    let inflight: usize = arg(args, "--inflight", 10000);
    let reqs = |k: usize| -> Vec<CompletionRequest> {
        (0..k)
            .map(|i| CompletionRequest::chat(vec![ChatMessage::user(format!("request {i}"))]))
            .collect()
    };
    println!("load avg before: {}", load_avg());
    let (mut server, url) = spawn_server(0)?;
    let mk = |c: usize| {
        OpenAiLlm::new(OpenAiConfig {
            base_url: url.clone(),
            model: "bench".into(),
            api_key_env: None,
            max_concurrency: c,
            ..Default::default()
        })
    };
    let llm = mk(conc)?;
    llm.complete_batch(&reqs(1000), &|_| {}); // warm-up: connections
    let rs = reqs(n);
    let t = Instant::now();
    let out = llm.complete_batch(&rs, &|_| {});
    let dt = t.elapsed().as_secs_f64();
    let ok = out.iter().filter(|r| r.is_ok()).count();
    println!(
        "instant server: {n} requests, concurrency {conc}: {:.0} req/s ({ok} ok) | {}",
        n as f64 / dt,
        llm.stats()
    );
    drop(llm);
    let _ = server.kill();
    let _ = server.wait();

    let (mut server, url2) = spawn_server(5000)?;
    let llm = OpenAiLlm::new(OpenAiConfig {
        base_url: url2,
        model: "bench".into(),
        api_key_env: None,
        max_concurrency: inflight,
        request_timeout: Duration::from_secs(120),
        ..Default::default()
    })?;
    let before = rss_mb();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let mon = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max((rss_mb() * 1024.0) as u64, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    let rs = reqs(inflight);
    let t = Instant::now();
    let out = llm.complete_batch(&rs, &|_| {});
    let dt = t.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = mon.join();
    let ok = out.iter().filter(|r| r.is_ok()).count();
    println!(
        "{inflight} requests in flight (server holds each 5 s): client RSS before {before:.0} MB, peak {:.0} MB; {ok} ok in {dt:.1}s | {}",
        peak.load(Ordering::Relaxed) as f64 / 1024.0,
        llm.stats()
    );
    let _ = server.kill();
    let _ = server.wait();
    println!("load avg after: {}", load_avg());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(|s| s.as_str()) {
        Some("local") => bench_local(&args),
        Some("openai") => bench_openai(&args),
        Some("serve") => serve(args.get(1).and_then(|d| d.parse().ok()).unwrap_or(0)),
        _ => bail!(
            "usage: bench_llm local [--gguf P] [--new-tokens N] [--batch B] [--llamacpp] | openai [--requests N] [--concurrency C] [--inflight N]"
        ),
    }
}
