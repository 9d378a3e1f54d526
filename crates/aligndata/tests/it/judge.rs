//! `aligndata respond` and `aligndata judge --llm-judge` against a real HTTP server on loopback
//! that speaks the OpenAI chat-completions API.
//!
//! The server is a local stand-in for a capable model (no such model can run in a test here): it
//! answers the respond stage's requests with a fixed supportive reply, and the judge's requests
//! with verdicts that are well-formed, sloppy (code fences, a trailing comma, scores as `"7/10"`
//! strings) or broken (truncated JSON, every time), chosen by the person's message. Everything
//! between the binary and the socket is the real client: HTTP, JSON mode, retries, repair.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::util::TestContext;

/// How the stand-in answers a judge request, keyed by words of the person's message.
fn verdict_for(message: &str) -> String {
    let items = [
        "validation",
        "reflection",
        "question",
        "specific",
        "no_toxic_positivity",
        "no_diagnosis",
        "safety",
        "length",
    ];
    if message.contains("exam") {
        // Truncated: not JSON even after the client's one retry.
        return r#"{"scores": {"validation": {"score": 8, "reason": "names"#.to_string();
    }
    if message.contains("manager") {
        // Sloppy but meaningful: fences, prose, string scores, a trailing comma.
        let body: Vec<String> = items
            .iter()
            .map(|i| format!(r#""{i}": {{"score": "7/10", "reason": "fair on {i}"}}"#))
            .collect();
        return format!(
            "Sure! Here is the review:\n```json\n{{\"scores\": {{{},}}}}\n```",
            body.join(", ")
        );
    }
    let body: Vec<String> = items
        .iter()
        .map(|i| format!(r#""{i}": {{"score": 9, "reason": "strong on {i}"}}"#))
        .collect();
    format!("{{\"scores\": {{{}}}}}", body.join(", "))
}

/// The reply the stand-in writes as a supportive listener.
const LISTENER_REPLY: &str = "That sounds really painful, and it makes sense that you feel shaken. \
It seems like you're being very hard on yourself right now. What part of it has stayed with you most?";

fn handle(mut stream: TcpStream, judged: &AtomicUsize) {
    let mut reader = BufReader::new(match stream.try_clone() {
        Ok(s) => s,
        Err(_) => return,
    });
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        let messages = req["messages"].as_array().cloned().unwrap_or_default();
        let system = messages
            .first()
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        // The first user message is the person's (a JSON-fix retry appends another).
        let user = messages
            .iter()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        let content = if system.contains("strict reviewer") {
            judged.fetch_add(1, Ordering::SeqCst);
            verdict_for(user)
        } else {
            LISTENER_REPLY.to_string()
        };
        let reply = serde_json::json!({
            "id": "chatcmpl-standin",
            "object": "chat.completion",
            "model": req["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 50, "completion_tokens": 40, "total_tokens": 90},
        })
        .to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            reply.len()
        );
        if stream.write_all(head.as_bytes()).is_err() || stream.write_all(reply.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// Starts the stand-in on 127.0.0.1 (a thread per connection, keep-alive; hand-written because
/// the test needs forty lines of HTTP/1.1, not a framework). Returns its base URL and a count of
/// judge requests answered.
fn start_standin() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
    let judged = Arc::new(AtomicUsize::new(0));
    let count = judged.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let count = count.clone();
            std::thread::spawn(move || handle(stream, &count));
        }
    });
    (url, judged)
}

fn records(ctx: &TestContext, dir: &str) -> Vec<serde_json::Value> {
    let run = ctx.run(&["inspect", dir, "-n", "0"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("record json"))
        .collect()
}

fn score<'a>(scores: &'a serde_json::Value, name: &str) -> Option<&'a serde_json::Value> {
    scores
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
}

#[test]
fn llm_judge_over_openai_parses_repairs_and_records_failures() {
    let (url, judged) = start_standin();
    let ctx = TestContext::new();
    let input = ctx.write(
        "in.jsonl",
        concat!(
            r#"{"text": "I froze during my team presentation and now I feel like a total fraud."}"#,
            "\n",
            r#"{"text": "My manager ignored my idea in the meeting and I feel invisible at work."}"#,
            "\n",
            r#"{"text": "I failed my driving exam again and I feel so stupid for even trying."}"#,
            "\n",
        )
        .as_bytes(),
    );
    let input = input.display().to_string();
    let run = ctx.run(&["ingest", &input, "--out", "ds", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    let run = ctx.run(&[
        "respond",
        "ds",
        "--backend",
        "openai",
        "--base-url",
        &url,
        "--model",
        "stand-in",
        "--n",
        "2",
        "--no-cache",
        "--out",
        "resp",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json()["respond"]["model_candidates"],
        6,
        "{}",
        run.stdout
    );

    let run = ctx.run(&[
        "judge",
        "resp",
        "--llm-judge",
        "--base-url",
        &url,
        "--model",
        "stand-in",
        "--no-cache",
        "--out",
        "judged",
        "--json",
    ]);
    assert_eq!(
        run.code, 0,
        "a broken verdict is not a crash: {}",
        run.stderr
    );
    let j = run.json();
    assert_eq!(j["judge"]["judged"], 3);
    assert_eq!(
        j["judge"]["llm_failures"], 2,
        "both verdicts on the exam input stay broken: {}",
        run.stdout
    );
    assert!(
        j["llm"]["json_repairs"].as_u64().unwrap_or(0) >= 2,
        "the fenced verdicts were repaired: {}",
        run.stdout
    );
    // 6 verdicts, plus one retry for each broken one.
    assert_eq!(judged.load(Ordering::SeqCst), 8);

    for r in records(&ctx, "judged") {
        let text = r["text"].as_str().unwrap_or("");
        for resp in r["responses"].as_array().expect("responses") {
            let scores = &resp["scores"];
            let total = score(scores, "judge.total").expect("total");
            if text.contains("exam") {
                let err = score(scores, "judge.llm.error").expect("error recorded");
                assert!(
                    err["reason"]
                        .as_str()
                        .unwrap_or("")
                        .contains("heuristic total stands"),
                    "{err}"
                );
                assert!(score(scores, "judge.llm.validation").is_none());
                assert!(
                    !total["reason"].as_str().unwrap_or("").contains("LLM judge"),
                    "{total}"
                );
                continue;
            }
            let (want, reason) = if text.contains("manager") {
                (0.7, "fair on validation")
            } else {
                (0.9, "strong on validation")
            };
            let v = score(scores, "judge.llm.validation").expect("LLM item score");
            assert!(
                (v["value"].as_f64().unwrap_or(-1.0) - want).abs() < 1e-9,
                "{v}"
            );
            assert_eq!(v["reason"], reason);
            let llm_total = score(scores, "judge.llm.total").expect("LLM total");
            assert!((llm_total["value"].as_f64().unwrap_or(-1.0) - want).abs() < 1e-9);
            assert!(
                total["reason"]
                    .as_str()
                    .unwrap_or("")
                    .contains("mean of heuristic"),
                "judge.total blends the LLM judge: {total}"
            );
            assert!(score(scores, "judge.llm.error").is_none());
        }
    }
}
