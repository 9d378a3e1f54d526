//! `aligndata serve` and `aligndata keys` as a user runs them: the real binary, a real database,
//! HTTP over loopback. The crash test kills the server with SIGKILL while clients are writing,
//! restarts it, and checks that every acknowledged event is there exactly once.
//!
//! SQLite always; PostgreSQL too when `ALIGNDATA_TEST_PG_URL` is set (scripts/test.sh sets it),
//! otherwise a visible skip message.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::util::TestContext;

/// A running `aligndata serve`; killed (SIGKILL) when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(ctx: &TestContext, db: &str) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_aligndata"))
            .args([
                "serve",
                "--db",
                db,
                "--listen",
                "127.0.0.1:0",
                "--arms",
                "warm,direct",
                "--rate-limit",
                "0",
            ])
            .current_dir(ctx.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aligndata serve");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let addr = rest.split_whitespace().next().unwrap_or("").to_string();
                    let _ = tx.send(Ok(addr));
                } else {
                    let _ = tx.send(Err(line));
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(Ok(addr)) => return Server { child, addr },
                Ok(Err(line)) => said.push(line),
                Err(_) => {
                    let _ = child.kill();
                    panic!("server did not start; it said: {}", said.join("\n"));
                }
            }
        }
    }

    fn kill_9(&mut self) {
        self.child.kill().expect("SIGKILL the server");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 client (one request per connection): status and JSON body, or an IO error
/// when the server is gone.
fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.map(Value::to_string).unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, payload) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no response"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, serde_json::from_str(payload).unwrap_or(Value::Null)))
}

fn create_key(ctx: &TestContext, db: &str, scopes: &str) -> String {
    let run = ctx.run(&[
        "keys", "create", "--db", db, "--scopes", scopes, "--label", "test", "--json",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run.json()["key"].as_str().expect("key").to_string()
}

/// Every comment text stored, with how many times each appears (pages through the API).
fn stored_comments(addr: &str, key: &str, prefix: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    let mut before: Option<i64> = None;
    loop {
        let path = match before {
            Some(b) => format!("/v1/feedback/recent?kind=comment&limit=1000&before={b}"),
            None => "/v1/feedback/recent?kind=comment&limit=1000".to_string(),
        };
        let (status, body) = http(addr, "GET", &path, key, None).expect("read feedback");
        assert_eq!(status, 200, "{body}");
        let items = body["feedback"].as_array().cloned().unwrap_or_default();
        if items.is_empty() {
            return seen;
        }
        for item in &items {
            let text = item["text"].as_str().unwrap_or("").to_string();
            if text.starts_with(prefix) {
                *seen.entry(text).or_insert(0) += 1;
            }
        }
        before = items.last().and_then(|i| i["id"].as_i64());
    }
}

fn acknowledged_events_survive_kill_9(db: &str) {
    let ctx = TestContext::new();
    let key = create_key(&ctx, db, "ingest,read");
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let tag = format!("run{}-{nanos:x}-", std::process::id());
    let mut server = Server::start(&ctx, db);
    let turn =
        json!({ "conversation_id": format!("{tag}c"), "user_message": "m", "agent_response": "r" });
    let (status, body) = http(&server.addr, "POST", "/v1/turns", &key, Some(&turn)).expect("turn");
    assert_eq!(status, 201, "{body}");
    let turn_id = body["id"].as_i64().expect("turn id");

    // Four clients write until the server dies; each remembers what was acknowledged.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let attempted = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for c in 0..4 {
        let (addr, key, tag) = (server.addr.clone(), key.clone(), tag.clone());
        let (acked, attempted, stop) = (acked.clone(), attempted.clone(), stop.clone());
        clients.push(std::thread::spawn(move || {
            for i in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let text = format!("{tag}{c}-{i}");
                attempted.lock().unwrap().push(text.clone());
                let event = json!({ "turn_id": turn_id, "kind": "comment", "text": text, "idempotency_key": text });
                match http(&addr, "POST", "/v1/feedback", &key, Some(&event)) {
                    Ok((201, _)) => acked.lock().unwrap().push(text),
                    Ok((status, body)) => panic!("unexpected {status}: {body}"),
                    Err(_) => break, // the server is gone
                }
            }
        }));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill_9();
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().expect("client thread");
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    let attempted: Vec<String> = attempted.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} events acknowledged before the deadline",
        acked.len()
    );

    let server = Server::start(&ctx, db);
    let stored = stored_comments(&server.addr, &key, &tag);
    let attempted_set: HashSet<&String> = attempted.iter().collect();
    for text in &acked {
        assert_eq!(
            stored.get(text),
            Some(&1),
            "acknowledged event {text} must be stored exactly once"
        );
    }
    for (text, n) in &stored {
        assert_eq!(*n, 1, "{text} stored {n} times");
        assert!(attempted_set.contains(text), "{text} was never sent");
    }
    // Clients retry what was never acknowledged, with the same idempotency keys: still once each.
    for text in &attempted {
        let event =
            json!({ "turn_id": turn_id, "kind": "comment", "text": text, "idempotency_key": text });
        let (status, body) =
            http(&server.addr, "POST", "/v1/feedback", &key, Some(&event)).expect("retry");
        assert_eq!(status, 201, "{body}");
    }
    let stored = stored_comments(&server.addr, &key, &tag);
    assert_eq!(stored.len(), attempted.len());
    assert!(stored.values().all(|&n| n == 1));
    eprintln!(
        "kill -9: {} acknowledged, {} attempted, all acknowledged present once; retries stored once",
        acked.len(),
        attempted.len()
    );
}

#[test]
fn sqlite_acknowledged_events_survive_kill_9() {
    let ctx = TestContext::new();
    let db = format!("sqlite:{}", ctx.path("feedback.db").display());
    acknowledged_events_survive_kill_9(&db);
}

#[test]
fn postgres_acknowledged_events_survive_kill_9() {
    match std::env::var("ALIGNDATA_TEST_PG_URL") {
        Ok(url) => acknowledged_events_survive_kill_9(&url),
        Err(_) => eprintln!(
            "skipped: set ALIGNDATA_TEST_PG_URL to run the PostgreSQL serve tests (scripts/test.sh does)"
        ),
    }
}

#[test]
fn keys_create_list_revoke_and_the_server_honours_them() {
    let ctx = TestContext::new();
    let db = format!("sqlite:{}", ctx.path("feedback.db").display());
    let bad = ctx.run(&["keys", "create", "--db", &db, "--scopes", "ingest,write"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("unknown scope `write`"),
        "{}",
        bad.stderr
    );
    let reader = create_key(&ctx, &db, "read");
    let human = ctx.run(&["keys", "create", "--db", &db, "--scopes", "ingest"]);
    assert_eq!(human.code, 0);
    assert!(
        human.stderr.contains("shown once") && human.stderr.contains("adk_"),
        "{}",
        human.stderr
    );

    let list = ctx.run(&["keys", "list", "--db", &db, "--json"]);
    let keys = list.json()["keys"].as_array().cloned().unwrap_or_default();
    assert_eq!(keys.len(), 2);
    assert!(
        !list.stdout.contains(&reader),
        "keys list never shows a key"
    );

    let server = Server::start(&ctx, &db);
    let (status, _) = http(&server.addr, "GET", "/v1/stats/cells", &reader, None).expect("stats");
    assert_eq!(status, 200);
    let (status, body) = http(
        &server.addr,
        "POST",
        "/v1/policy/choose",
        &reader,
        Some(&json!({ "cell": "c" })),
    )
    .expect("choose");
    assert_eq!(status, 403, "a read key cannot ingest: {body}");

    let id = keys[0]["id"].as_i64().expect("id").to_string();
    assert_eq!(ctx.run(&["keys", "revoke", "--db", &db, &id]).code, 0);
    let again = ctx.run(&["keys", "revoke", "--db", &db, &id]);
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("no live key"), "{}", again.stderr);
    let (status, body) =
        http(&server.addr, "GET", "/v1/stats/cells", &reader, None).expect("stats");
    assert_eq!(status, 401, "a revoked key is refused at once: {body}");

    // A write key the server has already seen (and remembers) is refused from the next write
    // on once another process revokes it.
    let writer = create_key(&ctx, &db, "ingest");
    let choose = |key: &str| {
        http(
            &server.addr,
            "POST",
            "/v1/policy/choose",
            key,
            Some(&json!({ "cell": "c" })),
        )
        .expect("choose")
    };
    let (status, body) = choose(&writer);
    assert_eq!(status, 200, "{body}");
    let list = ctx.run(&["keys", "list", "--db", &db, "--json"]);
    let newest = list.json()["keys"]
        .as_array()
        .and_then(|keys| keys.iter().filter_map(|k| k["id"].as_i64()).max())
        .expect("a key id");
    assert_eq!(
        ctx.run(&["keys", "revoke", "--db", &db, &newest.to_string()])
            .code,
        0
    );
    let (status, body) = choose(&writer);
    assert_eq!(
        status, 401,
        "a revoked write key is refused at once: {body}"
    );
}

#[test]
fn serve_rejects_a_database_it_cannot_use() {
    let ctx = TestContext::new();
    let run = ctx.run(&["serve", "--db", "mysql://x/y"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("sqlite:PATH"), "{}", run.stderr);
    let run = ctx.run(&["serve", "--db", "sqlite:x.db", "--arms", "a,a"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("listed twice"), "{}", run.stderr);
}
