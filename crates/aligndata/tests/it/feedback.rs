//! The loop from the live agent back into data, as a user runs it: a real `aligndata serve` on
//! loopback over a SQLite file, turns and feedback posted over HTTP, then `feedback export`,
//! `feedback offpolicy`, `plan --from-feedback` and `serve --labeller` on what was stored.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::{TestContext, read_jsonl, repo_root};

const CELL_A: &str = "theme=perfectionism|situation=job-interview|emotion=anxious|risk=none";
const CELL_B: &str = "theme=fear-of-failure|situation=exams-and-study|emotion=sad|risk=none";

/// A running `aligndata serve`; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(ctx: &TestContext, db: &str, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve",
            "--db",
            db,
            "--listen",
            "127.0.0.1:0",
            "--arms",
            "warm,direct",
            "--rate-limit",
            "0",
        ];
        args.extend_from_slice(extra);
        let mut child = Command::new(env!("CARGO_BIN_EXE_aligndata"))
            .args(&args)
            .current_dir(ctx.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aligndata serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let found = line
                    .split("listening on http://")
                    .nth(1)
                    .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string());
                let _ = tx.send(found.ok_or(line));
            }
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        let mut said = Vec::new();
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(Ok(addr)) => return Server { child, addr },
                Ok(Err(line)) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start; it said: {}", said.join("\n"));
                }
            }
        }
    }

    /// One request: status and JSON body.
    fn call(&self, method: &str, path: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
        let mut stream = TcpStream::connect(&self.addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let body = body.map(Value::to_string).unwrap_or_default();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .expect("send");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read");
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text.split_once("\r\n\r\n").expect("http response");
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, serde_json::from_str(payload).unwrap_or(Value::Null))
    }

    fn post(&self, path: &str, key: &str, body: Value) -> Value {
        let (status, reply) = self.call("POST", path, key, Some(&body));
        assert!(
            status == 200 || status == 201,
            "{path} {body}: {status} {reply}"
        );
        reply
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn create_key(ctx: &TestContext, db: &str) -> String {
    let run = ctx.run(&[
        "keys",
        "create",
        "--db",
        db,
        "--scopes",
        "ingest,read",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["key"].as_str().expect("key").to_string()
}

fn keys_of(row: &Value) -> BTreeSet<String> {
    row.as_object()
        .expect("object row")
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

#[test]
fn export_writes_trl_rows_scrubbed_and_deduplicated() {
    let ctx = TestContext::new();
    let db = format!("sqlite:{}", ctx.path("feedback.db").display());
    let key = create_key(&ctx, &db);
    // --keep-pii: the service stores what it gets, so the export's own scrubbing is what is tested.
    let server = Server::start(&ctx, &db, &["--keep-pii"]);
    let turn = |conv: &str, user: &str, response: &str, candidates: &[&str]| -> i64 {
        server.post(
            "/v1/turns",
            &key,
            json!({ "conversation_id": conv, "user_message": user, "agent_response": response,
                    "candidates": candidates, "cell": CELL_A }),
        )["id"]
            .as_i64()
            .expect("turn id")
    };
    let feedback = |body: Value| server.post("/v1/feedback", &key, body);

    let interview = "I froze in my interview today and now I feel like a complete fraud.";
    let kind_reply =
        "Freezing for a moment is common under pressure; it says nothing about your worth.";
    let a = turn(
        "c1",
        interview,
        kind_reply,
        &[
            "Everyone freezes sometimes. What happened right before you froze?",
            "Just prepare better next time and you will be fine.",
        ],
    );
    feedback(json!({ "turn_id": a, "kind": "thumb", "thumb": "down" }));
    feedback(json!({ "turn_id": a, "kind": "thumb", "thumb": "up" })); // changed their mind: up wins
    feedback(json!({ "turn_id": a, "kind": "pairwise", "chosen": 0, "rejected": 1 }));
    // A retried request with the same idempotency key is stored once.
    let retry =
        json!({ "turn_id": a, "kind": "comment", "text": "thanks", "idempotency_key": "k-1" });
    feedback(retry.clone());
    feedback(retry);

    let b = turn(
        "c2",
        "My exam results came back and I failed again, I am so stupid.",
        "Try harder next time.",
        &[],
    );
    feedback(json!({ "turn_id": b, "kind": "thumb", "thumb": "down" }));
    feedback(json!({ "turn_id": b, "kind": "correction",
        "text": "Failing an exam hurts, and it does not make you stupid. If you want a study plan, \
                 write to maria.lopez@example.com or call 555-867-5309 and we can go through it." }));

    // The same message, response and verdict in another conversation: an exact duplicate row.
    let c = turn("c3", interview, kind_reply, &[]);
    feedback(json!({ "turn_id": c, "kind": "thumb", "thumb": "up" }));
    let d = turn(
        "c4",
        "Everyone at the party seemed smarter than me.",
        "You should stop comparing.",
        &[],
    );
    feedback(json!({ "turn_id": d, "kind": "rating", "rating": 2 }));
    drop(server);

    let out = ctx.path("fb");
    let run = ctx.run(&[
        "feedback",
        "export",
        "--db",
        &db,
        "--out",
        out.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let s = &run.json()["export"];
    assert_eq!(s["turns"], 4);
    assert_eq!(
        s["events"]["comment"], 1,
        "the retried comment is stored once"
    );
    assert_eq!(s["unpaired"]["candidates"], 4);
    assert_eq!(s["unpaired"]["exact_duplicates"], 1);
    assert_eq!(s["unpaired"]["written"], 3);
    assert_eq!(
        (&s["unpaired_desirable"], &s["unpaired_undesirable"]),
        (&json!(1), &json!(2))
    );
    assert_eq!(s["preference"]["written"], 2);
    assert_eq!(
        (
            &s["preference_from_pairwise"],
            &s["preference_from_corrections"]
        ),
        (&json!(1), &json!(1))
    );
    assert_eq!(s["sft"]["written"], 1);
    assert_eq!(s["pii"]["email"], 1);
    assert_eq!(s["pii"]["phone"], 1);
    assert!(
        run.stderr.contains("dropped 1 exact"),
        "summary: {}",
        run.stderr
    );

    let unpaired = read_jsonl(&out.join("unpaired.jsonl"));
    assert_eq!(unpaired.len(), 3);
    for row in &unpaired {
        assert_eq!(
            keys_of(row),
            set(&["prompt", "completion", "label"]),
            "{row}"
        );
        assert_eq!(row["prompt"][0]["role"], "user");
        assert_eq!(row["completion"][0]["role"], "assistant");
    }
    assert_eq!(unpaired[0]["label"], true, "the later thumb up wins");
    assert_eq!(unpaired[0]["completion"][0]["content"], kind_reply);
    let preference = read_jsonl(&out.join("preference.jsonl"));
    for row in &preference {
        assert_eq!(
            keys_of(row),
            set(&["prompt", "chosen", "rejected"]),
            "{row}"
        );
    }
    assert_eq!(
        preference[0]["chosen"][0]["content"],
        "Everyone freezes sometimes. What happened right before you froze?"
    );
    assert_eq!(
        preference[1]["rejected"][0]["content"],
        "Try harder next time."
    );
    let correction = preference[1]["chosen"][0]["content"]
        .as_str()
        .expect("chosen text");
    assert!(
        correction.contains("[EMAIL]") && correction.contains("[PHONE]"),
        "{correction}"
    );
    let sft = read_jsonl(&out.join("sft.jsonl"));
    assert_eq!(sft.len(), 1);
    assert_eq!(keys_of(&sft[0]), set(&["messages"]));
    assert_eq!(sft[0]["messages"][1]["content"].as_str(), Some(correction));
    for name in [
        "unpaired.jsonl",
        "preference.jsonl",
        "sft.jsonl",
        "provenance.jsonl",
    ] {
        let text = std::fs::read_to_string(out.join(name)).expect("read");
        assert!(
            !text.contains("maria.lopez@example.com") && !text.contains("867-5309"),
            "{name} leaks PII"
        );
    }
    for name in ["unpaired.parquet", "preference.parquet", "sft.parquet"] {
        assert!(
            std::fs::metadata(out.join(name)).expect(name).len() > 0,
            "{name}"
        );
    }
    let quarantine = read_jsonl(&out.join("quarantine.jsonl"));
    assert!(
        quarantine
            .iter()
            .any(|q| q["reason"].as_str().unwrap_or("").contains("superseded")),
        "{quarantine:?}"
    );

    // The dataset is an ordinary aligndata dataset: one record per distinct user message.
    let stats = ctx.run(&[
        "stats",
        out.join("dataset").to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(stats.code, 0, "{}", stats.stderr);
    let inspect = ctx.run(&[
        "inspect",
        out.join("dataset").to_str().expect("utf-8"),
        "-n",
        "0",
    ]);
    assert_eq!(inspect.code, 0, "{}", inspect.stderr);
    let records: Vec<Value> = inspect
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("record"))
        .collect();
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["source"] == "feedback"));
}

/// Rewards of the simulated users: `warm` works 4 times in 5, `direct` once in 5.
fn simulated_reward(arm: &str, nth: usize) -> bool {
    match arm {
        "warm" => nth % 5 != 4,
        _ => nth.is_multiple_of(5),
    }
}

#[test]
fn vw_log_and_offpolicy_estimates_from_a_simulated_bandit() {
    let ctx = TestContext::new();
    let db = format!("sqlite:{}", ctx.path("feedback.db").display());
    let key = create_key(&ctx, &db);
    let server = Server::start(&ctx, &db, &[]);
    let mut pulls: HashMap<String, usize> = HashMap::new();
    let mut rewards = Vec::new();
    for i in 0..240 {
        let cell = if i % 2 == 0 { CELL_A } else { CELL_B };
        let choice = server.post("/v1/policy/choose", &key, json!({ "cell": cell }));
        let arm = choice["arm"].as_str().expect("arm").to_string();
        let turn = server.post(
            "/v1/turns",
            &key,
            json!({ "conversation_id": format!("sim-{i}"), "user_message": format!("message {i}"),
                    "agent_response": format!("{arm} answer {i}"), "decision_id": choice["decision_id"] }),
        );
        let nth = pulls.entry(arm.clone()).or_default();
        let good = simulated_reward(&arm, *nth);
        *nth += 1;
        // Every fifth turn gets no feedback: not an outcome, not in the VW log.
        if i % 5 == 4 {
            continue;
        }
        server.post(
            "/v1/feedback",
            &key,
            json!({ "turn_id": turn["id"], "kind": "thumb", "thumb": if good { "up" } else { "down" } }),
        );
        rewards.push(f64::from(u8::from(good)));
    }
    let observed = rewards.iter().sum::<f64>() / rewards.len() as f64;
    let (status, served) = server.call("GET", "/v1/policy/offpolicy?policy=arm%3Dwarm", &key, None);
    assert_eq!(status, 200, "{served}");
    let (status, bad) = server.call("GET", "/v1/policy/offpolicy?policy=best", &key, None);
    assert_eq!(
        (status, bad["field"].as_str()),
        (422, Some("policy")),
        "{bad}"
    );
    drop(server);

    let vw = ctx.path("log.vw");
    let run = ctx.run(&[
        "feedback",
        "export",
        "--db",
        &db,
        "--vw",
        vw.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.json()["vw"]["actions"],
        json!({ "direct": 1, "warm": 2 })
    );
    let text = std::fs::read_to_string(&vw).expect("vw file");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), rewards.len());
    let mut vw_costs = Vec::new();
    for line in &lines {
        // action:cost:probability | features
        let (label, features) = line.split_once(" | ").expect("label | features");
        let parts: Vec<&str> = label.split(':').collect();
        assert_eq!(parts.len(), 3, "{line}");
        let action: usize = parts[0].parse().expect("action");
        let cost: f64 = parts[1].parse().expect("cost");
        let p: f64 = parts[2].parse().expect("probability");
        assert!((1..=2).contains(&action), "{line}");
        assert!(cost == 0.0 || cost == 1.0, "{line}");
        assert!(p > 0.0 && p <= 1.0, "{line}");
        let expected = if features.contains("theme=perfectionism") {
            CELL_A
        } else {
            CELL_B
        };
        assert_eq!(features, expected.replace('|', " "), "{line}");
        vw_costs.push(cost);
    }
    let vw_mean_reward = 1.0 - vw_costs.iter().sum::<f64>() / vw_costs.len() as f64;
    assert!((vw_mean_reward - observed).abs() < 1e-9);

    let run = ctx.run(&[
        "feedback",
        "offpolicy",
        "--db",
        &db,
        "--policy",
        "logging",
        "--policy",
        "arm=warm",
        "--policy",
        "arm=direct",
        "--policy",
        "greedy",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let j = run.json();
    assert_eq!(j["outcomes"].as_u64(), Some(rewards.len() as u64));
    let est = |i: usize, what: &str| j["estimates"][i][what].as_f64().expect(what);
    // The logging policy evaluated on its own log: weights 1, both estimates are the mean.
    assert!((est(0, "logged_value") - observed).abs() < 1e-9);
    assert!((est(0, "ips") - observed).abs() < 1e-9);
    assert!((est(0, "snips") - observed).abs() < 1e-9);
    // Always `warm` (80% good) beats what was logged, which beats always `direct` (20%).
    let (warm, direct, greedy) = (est(1, "snips"), est(2, "snips"), est(3, "snips"));
    assert!(
        warm > observed && observed > direct,
        "warm {warm}, logged {observed}, direct {direct}"
    );
    // SNIPS weights each pull by 1/p, and Thompson sampling's propensities drift as it learns,
    // so on 240 pulls the estimate lands anywhere near the true 0.8 (0.7–0.98 seen): assert the
    // side of the logged value and of chance it falls on, not a tight band.
    assert!(warm > 0.6, "warm {warm}");
    assert!(greedy > observed, "greedy {greedy}, logged {observed}");
    assert!(run.stderr.contains("IPS"), "{}", run.stderr);
    // The endpoint serves the same figures.
    assert_eq!(served["snips"], j["estimates"][1]["snips"]);
    assert_eq!(served["outcomes"], j["outcomes"]);
}

#[test]
fn plan_from_feedback_gives_the_worst_cell_more_quota() {
    let ctx = TestContext::new();
    let db = format!("sqlite:{}", ctx.path("feedback.db").display());
    let key = create_key(&ctx, &db);
    let server = Server::start(&ctx, &db, &[]);
    for (cell, thumb) in [(CELL_A, "down"), (CELL_B, "up")] {
        for i in 0..12 {
            let turn = server.post(
                "/v1/turns",
                &key,
                json!({ "conversation_id": format!("{thumb}-{i}"), "user_message": format!("m {i}"),
                        "agent_response": "r", "cell": cell }),
            );
            server.post(
                "/v1/feedback",
                &key,
                json!({ "turn_id": turn["id"], "kind": "thumb", "thumb": thumb }),
            );
        }
    }
    drop(server);
    let taxonomy = repo_root().join("examples/self-doubt/taxonomy.yaml");
    let taxonomy = taxonomy.to_str().expect("utf-8");
    let show = ctx.run(&["taxonomy", "show", taxonomy, "--json"]);
    assert_eq!(show.code, 0, "{}", show.stderr);
    let grid = show.json()["allowed_cells"]
        .as_u64()
        .expect("allowed cell count");
    let count = (grid * 3).to_string();
    let run = ctx.run(&[
        "plan",
        "--taxonomy",
        taxonomy,
        "--count",
        &count,
        "--from-feedback",
        &db,
        "--out",
        "plan.json",
        "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.json()["feedback"]["matched_cells"], 2);
    let plan: Value =
        serde_json::from_slice(&std::fs::read(ctx.path("plan.json")).expect("plan")).expect("json");
    assert_eq!(plan["total"].as_u64(), Some(grid * 3));
    let quota = |key: &str| {
        plan["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .find(|c| c["cell"] == key)
            .and_then(|c| c["quota"].as_u64())
            .unwrap_or(0)
    };
    let (worst, best) = (quota(CELL_A), quota(CELL_B));
    assert!(worst > best, "worst cell {worst}, best cell {best}");
    assert!(run.stderr.contains("neediest"), "{}", run.stderr);
    // `generate --plan` reads it.
    let gen_run = ctx.run(&[
        "generate",
        "--taxonomy",
        taxonomy,
        "--plan",
        "plan.json",
        "--backend",
        "template",
        "--check",
        "none",
        "--out",
        "gen",
    ]);
    assert_eq!(gen_run.code, 0, "{}", gen_run.stderr);
}

#[test]
fn serve_labels_messages_into_taxonomy_cells() {
    let ctx = TestContext::new();
    let db = format!("sqlite:{}", ctx.path("feedback.db").display());
    let key = create_key(&ctx, &db);
    let taxonomy = repo_root().join("examples/self-doubt/taxonomy.yaml");
    let server = Server::start(
        &ctx,
        &db,
        &[
            "--labeller",
            "prototype",
            "--taxonomy",
            taxonomy.to_str().expect("utf-8"),
        ],
    );
    let message = "My hands shook during the job interview and I'm sure they think I'm a fraud.";
    let turn = server.post(
        "/v1/turns",
        &key,
        json!({ "conversation_id": "c", "user_message": message, "agent_response": "r" }),
    );
    let cell = turn["cell"].as_str().expect("cell").to_string();
    let dims: Vec<&str> = cell
        .split('|')
        .map(|p| p.split_once('=').expect("dim=value").0)
        .collect();
    assert_eq!(dims, ["theme", "situation", "emotion", "risk"], "{cell}");
    assert!(!cell.contains('?'), "{cell}");
    assert_eq!(
        cell.split('|').filter(|p| !p.ends_with('=')).count(),
        4,
        "a value for every dimension: {cell}"
    );
    // The policy labels the same message into the same cell.
    let choice = server.post(
        "/v1/policy/choose",
        &key,
        json!({ "user_message": message }),
    );
    assert_eq!(choice["cell"].as_str(), Some(cell.as_str()));
    drop(server);

    let bad = ctx.run(&["serve", "--db", &db, "--labeller", "prototype"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--taxonomy"), "{}", bad.stderr);
}
