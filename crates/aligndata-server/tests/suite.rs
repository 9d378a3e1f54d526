//! One test suite, run against both stores: a real SQLite file and a real PostgreSQL server.
//!
//! Every test is an `async fn(&Fixture)`; the `suite!` macro at the bottom instantiates it once
//! per backend. PostgreSQL tests need `ALIGNDATA_TEST_PG_URL` (scripts/test.sh starts a private
//! server and sets it); without it they print a visible skip message and pass. Each PostgreSQL
//! test gets its own schema, so tests run in parallel without seeing each other's rows.

use std::sync::Arc;

use aligndata_server::store::{Counts, StoreOptions};
use aligndata_server::{Location, RateLimit, Scopes, ServerConfig, Store, api};
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

struct Fixture {
    store: Store,
    location: Location,
    ingest: String,
    read: String,
    admin: String,
    _dir: Option<tempfile::TempDir>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn field(&self) -> Option<&str> {
        self.body.get("field").and_then(Value::as_str)
    }
}

impl Fixture {
    async fn with_store(
        store: Store,
        location: Location,
        dir: Option<tempfile::TempDir>,
    ) -> Fixture {
        let ingest = store
            .create_key(&Scopes::parse("ingest").unwrap(), "ingest")
            .await
            .unwrap()
            .1;
        let read = store
            .create_key(&Scopes::parse("read").unwrap(), "read")
            .await
            .unwrap()
            .1;
        let admin = store
            .create_key(&Scopes::parse("admin").unwrap(), "admin")
            .await
            .unwrap()
            .1;
        Fixture {
            store,
            location,
            ingest,
            read,
            admin,
            _dir: dir,
        }
    }

    async fn sqlite() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("feedback.db"));
        let store = Store::open(&location, &StoreOptions::default())
            .await
            .unwrap();
        Fixture::with_store(store, location, Some(dir)).await
    }

    async fn postgres() -> Option<Fixture> {
        let Ok(url) = std::env::var("ALIGNDATA_TEST_PG_URL") else {
            eprintln!(
                "skipped: set ALIGNDATA_TEST_PG_URL to run the PostgreSQL tests (scripts/test.sh does)"
            );
            return None;
        };
        // A fresh schema per test; the store's connections get it as their search_path.
        let schema = format!("t_{}", hex::encode(rand::random::<[u8; 6]>()));
        let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(&url)
            .await
            .expect("connect to ALIGNDATA_TEST_PG_URL");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&mut admin)
            .await
            .unwrap();
        let sep = if url.contains('?') { '&' } else { '?' };
        let location = Location::Postgres(format!("{url}{sep}options[search_path]={schema}"));
        let store = Store::open(
            &location,
            &StoreOptions {
                max_connections: 4,
                ..StoreOptions::default()
            },
        )
        .await
        .unwrap();
        Some(Fixture::with_store(store, location, None).await)
    }

    fn app(&self, config: ServerConfig) -> Router {
        api::router(self.store.clone(), config).unwrap()
    }

    fn default_app(&self) -> Router {
        self.app(ServerConfig {
            arms: vec!["warm".into(), "direct".into()],
            seed: Some(1),
            ..ServerConfig::default()
        })
    }

    async fn counts(&self) -> Counts {
        self.store.counts().await.unwrap()
    }
}

async fn send(
    app: &Router,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<Vec<u8>>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(key) = key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(bytes) => req
            .header("content-type", "application/json")
            .body(Body::from(bytes)),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn post(app: &Router, path: &str, key: &str, body: Value) -> Reply {
    send(
        app,
        "POST",
        path,
        Some(key),
        Some(body.to_string().into_bytes()),
        &[],
    )
    .await
}

async fn get(app: &Router, path: &str, key: &str) -> Reply {
    send(app, "GET", path, Some(key), None, &[]).await
}

async fn new_turn(app: &Router, key: &str, extra: Value) -> i64 {
    let mut body = json!({ "conversation_id": "c1", "user_message": "I always feel behind", "agent_response": "That sounds heavy." });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = post(app, "/v1/turns", key, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_i64().unwrap()
}

// ---- the tests -----------------------------------------------------------------------------------

async fn loop_choose_turn_feedback_updates_posterior(fx: &Fixture) {
    let app = fx.default_app();
    let choice = post(
        &app,
        "/v1/policy/choose",
        &fx.ingest,
        json!({ "cell": "theme=work" }),
    )
    .await;
    assert_eq!(choice.status, StatusCode::OK, "{}", choice.body);
    let arm = choice.body["arm"].as_str().unwrap().to_string();
    let p = choice.body["propensity"].as_f64().unwrap();
    assert!(p > 0.0 && p <= 1.0);
    let probs = choice.body["probabilities"].as_object().unwrap();
    assert!((probs.values().map(|v| v.as_f64().unwrap()).sum::<f64>() - 1.0).abs() < 1e-9);

    let decision = choice.body["decision_id"].clone();
    let turn = post(
        &app,
        "/v1/turns",
        &fx.ingest,
        json!({
            "conversation_id": "c1", "user_message": "I froze in the meeting", "agent_response": "That happens.",
            "decision_id": decision, "candidates": ["a", "b"], "client_ts": "2026-01-01T00:00:00Z"
        }),
    )
    .await;
    assert_eq!(turn.status, StatusCode::CREATED, "{}", turn.body);
    assert_eq!(turn.body["arm"], json!(arm));
    assert_eq!(turn.body["cell"], json!("theme=work"));
    assert_eq!(turn.body["propensity"].as_f64(), Some(p));
    let turn_id = turn.body["id"].as_i64().unwrap();

    for body in [
        json!({ "turn_id": turn_id, "kind": "thumb", "thumb": "up" }),
        json!({ "turn_id": turn_id, "kind": "rating", "rating": 2 }),
        json!({ "turn_id": turn_id, "kind": "comment", "text": "ok" }),
        json!({ "turn_id": turn_id, "kind": "correction", "text": "Say it is normal." }),
        json!({ "turn_id": turn_id, "kind": "pairwise", "chosen": 1, "rejected": 0 }),
    ] {
        let r = post(&app, "/v1/feedback", &fx.ingest, body.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED, "{body} -> {}", r.body);
    }
    let stats = get(&app, "/v1/stats/cells", &fx.read).await;
    assert_eq!(stats.status, StatusCode::OK);
    let cell = &stats.body["cells"][0];
    assert_eq!(cell["cell"], json!("theme=work"));
    let arm_stats = cell["arms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["arm"] == json!(arm))
        .unwrap();
    // thumb up: success; rating 2 and the correction: failures; comment, pairwise: nothing.
    assert_eq!(
        (
            arm_stats["successes"].as_i64(),
            arm_stats["failures"].as_i64()
        ),
        (Some(1), Some(2))
    );
    assert_eq!(arm_stats["turns"].as_i64(), Some(1));

    let recent = get(&app, "/v1/feedback/recent?limit=2", &fx.read).await;
    let items = recent.body["feedback"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], json!("pairwise"));
    assert!(items[0]["id"].as_i64() > items[1]["id"].as_i64());
    let thumbs = get(&app, "/v1/feedback/recent?kind=thumb", &fx.read).await;
    assert_eq!(thumbs.body["feedback"].as_array().unwrap().len(), 1);

    // A decision serves one turn.
    let again = post(
        &app,
        "/v1/turns",
        &fx.ingest,
        json!({
            "conversation_id": "c1", "user_message": "x", "agent_response": "y", "decision_id": decision
        }),
    )
    .await;
    assert_eq!(
        (again.status, again.field()),
        (StatusCode::CONFLICT, Some("decision_id"))
    );
}

async fn turn_without_cell_is_labelled_and_scrubbed(fx: &Fixture) {
    struct FirstWord;
    impl aligndata_server::policy::Labeller for FirstWord {
        fn cell(&self, m: &str) -> String {
            format!("first={}", m.split_whitespace().next().unwrap_or(""))
        }
    }
    let app = fx.app(ServerConfig {
        labeller: Arc::new(FirstWord),
        scrubber: Arc::new(|s: &str| s.replace("ann@example.com", "[EMAIL]")),
        ..ServerConfig::default()
    });
    let id = new_turn(
        &app,
        &fx.ingest,
        json!({ "user_message": "Mail ann@example.com please" }),
    )
    .await;
    let turn = fx.store.turn(id).await.unwrap().unwrap();
    assert_eq!(turn.user_message, "Mail [EMAIL] please");
    assert_eq!(turn.cell, "first=Mail");
    let choice = post(
        &app,
        "/v1/policy/choose",
        &fx.ingest,
        json!({ "user_message": "Hello there" }),
    )
    .await;
    assert_eq!(choice.body["cell"], json!("first=Hello"));
}

async fn idempotent_retries_are_stored_once(fx: &Fixture) {
    let app = fx.default_app();
    let turn_id = new_turn(&app, &fx.ingest, json!({})).await;
    let body = json!({ "turn_id": turn_id, "kind": "thumb", "thumb": "down" });
    let hdr = [("idempotency-key", "fb-1")];
    let first = send(
        &app,
        "POST",
        "/v1/feedback",
        Some(&fx.ingest),
        Some(body.to_string().into()),
        &hdr,
    )
    .await;
    let second = send(
        &app,
        "POST",
        "/v1/feedback",
        Some(&fx.ingest),
        Some(body.to_string().into()),
        &hdr,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(
        first.body, second.body,
        "a replay answers with the same body"
    );
    assert!(first.headers.get("idempotent-replayed").is_none());
    assert_eq!(
        second
            .headers
            .get("idempotent-replayed")
            .map(|v| v.to_str().unwrap()),
        Some("true")
    );
    // The key in the body is the same key.
    let mut with_field = body.clone();
    with_field["idempotency_key"] = json!("fb-1");
    let third = post(&app, "/v1/feedback", &fx.ingest, with_field).await;
    assert_eq!(third.body, first.body);
    assert_eq!(fx.counts().await.feedback, 1);
    let stats = fx.store.cell_stats().await.unwrap();
    assert!(stats.iter().all(|c| c.arms.iter().all(|a| a.failures <= 1)));

    // Same key, different request: 409, nothing stored.
    let other = json!({ "turn_id": turn_id, "kind": "thumb", "thumb": "up" });
    let r = send(
        &app,
        "POST",
        "/v1/feedback",
        Some(&fx.ingest),
        Some(other.to_string().into()),
        &hdr,
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::CONFLICT, Some("idempotency_key"))
    );
    assert_eq!(fx.counts().await.feedback, 1);

    // Turns too.
    let t = json!({ "conversation_id": "c9", "user_message": "m", "agent_response": "r", "idempotency_key": "turn-1" });
    let a = post(&app, "/v1/turns", &fx.ingest, t.clone()).await;
    let b = post(&app, "/v1/turns", &fx.ingest, t).await;
    assert_eq!(a.body["id"], b.body["id"]);
    assert_eq!(fx.counts().await.turns, 2);
}

async fn concurrent_retries_are_stored_once(fx: &Fixture) {
    let app = fx.default_app();
    let turn_id = new_turn(&app, &fx.ingest, json!({})).await;
    let body =
        json!({ "turn_id": turn_id, "kind": "rating", "rating": 5, "idempotency_key": "race" });
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, key, body) = (app.clone(), fx.ingest.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            post(&app, "/v1/feedback", &key, body).await
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let r = t.await.unwrap();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_i64().unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1);
    assert_eq!(fx.counts().await.feedback, 1);
}

async fn bad_requests_get_the_right_4xx_and_change_nothing(fx: &Fixture) {
    let app = fx.default_app();
    let turn_id = new_turn(&app, &fx.ingest, json!({ "candidates": ["a", "b"] })).await;
    let revoked = fx
        .store
        .create_key(&Scopes::parse("ingest").unwrap(), "old")
        .await
        .unwrap();
    assert!(fx.store.revoke_key(revoked.0.id).await.unwrap());
    let before = fx.counts().await;
    let stats_before = fx.store.cell_stats().await.unwrap();

    let fb = |extra: Value| {
        let mut b = json!({ "turn_id": turn_id, "kind": "thumb", "thumb": "up" });
        for (k, v) in extra.as_object().unwrap() {
            b[k] = v.clone();
        }
        b
    };
    // (what, path, key, body, expected status, expected field)
    type Case<'a> = (
        &'a str,
        &'a str,
        Option<&'a str>,
        Vec<u8>,
        StatusCode,
        Option<&'a str>,
    );
    let cases: Vec<Case> = vec![
        (
            "wrong type",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "kind": "rating", "thumb": null, "rating": "5" }))
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("rating"),
        ),
        (
            "turn id as string",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "turn_id": "1" })).to_string().into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("turn_id"),
        ),
        (
            "rating out of range",
            "/v1/feedback",
            Some(&fx.ingest),
            json!({ "turn_id": turn_id, "kind": "rating", "rating": 7 })
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("rating"),
        ),
        (
            "bad thumb",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "thumb": "sideways" })).to_string().into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("thumb"),
        ),
        (
            "unknown kind",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "kind": "like" })).to_string().into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("kind"),
        ),
        (
            "field of another kind",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "rating": 3 })).to_string().into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("rating"),
        ),
        (
            "unknown field",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "thumbs": "up" })).to_string().into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("thumbs"),
        ),
        (
            "missing field",
            "/v1/turns",
            Some(&fx.ingest),
            json!({ "conversation_id": "c", "agent_response": "r" })
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("user_message"),
        ),
        (
            "candidate not a string",
            "/v1/turns",
            Some(&fx.ingest),
            json!({ "conversation_id": "c", "user_message": "m", "agent_response": "r", "candidates": ["a", 2] })
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("candidates[1]"),
        ),
        (
            "empty message",
            "/v1/turns",
            Some(&fx.ingest),
            json!({ "conversation_id": "c", "user_message": " ", "agent_response": "r" })
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("user_message"),
        ),
        (
            "not JSON",
            "/v1/feedback",
            Some(&fx.ingest),
            b"{\"turn_id\": ".to_vec(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            "huge body",
            "/v1/turns",
            Some(&fx.ingest),
            json!({ "conversation_id": "c", "user_message": "x".repeat(100_000), "agent_response": "r" })
                .to_string()
                .into(),
            StatusCode::PAYLOAD_TOO_LARGE,
            None,
        ),
        (
            "unknown turn",
            "/v1/feedback",
            Some(&fx.ingest),
            fb(json!({ "turn_id": turn_id + 1000 })).to_string().into(),
            StatusCode::NOT_FOUND,
            Some("turn_id"),
        ),
        (
            "unknown decision",
            "/v1/turns",
            Some(&fx.ingest),
            json!({ "conversation_id": "c", "user_message": "m", "agent_response": "r", "decision_id": 424242 })
                .to_string()
                .into(),
            StatusCode::NOT_FOUND,
            Some("decision_id"),
        ),
        (
            "pairwise out of range",
            "/v1/feedback",
            Some(&fx.ingest),
            json!({ "turn_id": turn_id, "kind": "pairwise", "chosen": 5, "rejected": 0 })
                .to_string()
                .into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("chosen"),
        ),
        (
            "missing key",
            "/v1/feedback",
            None,
            fb(json!({})).to_string().into(),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "invalid key",
            "/v1/feedback",
            Some("adk_0000"),
            fb(json!({})).to_string().into(),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "revoked key",
            "/v1/feedback",
            Some(&revoked.1),
            fb(json!({})).to_string().into(),
            StatusCode::UNAUTHORIZED,
            None,
        ),
        (
            "wrong scope",
            "/v1/feedback",
            Some(&fx.read),
            fb(json!({})).to_string().into(),
            StatusCode::FORBIDDEN,
            None,
        ),
        (
            "choose without cell",
            "/v1/policy/choose",
            Some(&fx.ingest),
            json!({}).to_string().into(),
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cell"),
        ),
    ];
    for (what, path, key, body, status, field) in cases {
        let r = send(&app, "POST", path, key, Some(body), &[]).await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert!(
            r.body["error"].is_string(),
            "{what}: error body is JSON with a message: {}",
            r.body
        );
        assert_eq!(r.field(), field, "{what}: {}", r.body);
    }
    let r = send(
        &app,
        "POST",
        "/v1/feedback",
        None,
        Some(fb(json!({})).to_string().into()),
        &[("authorization", "Basic abc")],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&app, "/v1/stats/cells", &fx.ingest).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&app, "/v1/feedback/recent?limit=0", &fx.read)
            .await
            .field(),
        Some("limit")
    );
    assert_eq!(
        get(&app, "/v1/feedback/recent?limit=abc", &fx.read)
            .await
            .status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        get(&app, "/v1/nope", &fx.read).await.status,
        StatusCode::NOT_FOUND
    );

    assert_eq!(
        fx.counts().await,
        before,
        "rejected requests stored nothing"
    );
    assert_eq!(fx.store.cell_stats().await.unwrap(), stats_before);
    // The admin key may do everything.
    assert_eq!(
        get(&app, "/v1/stats/cells", &fx.admin).await.status,
        StatusCode::OK
    );
}

async fn sql_injection_strings_are_stored_verbatim(fx: &Fixture) {
    let app = fx.default_app();
    let nasty = [
        "'); DROP TABLE turns; --",
        "x' OR '1'='1",
        "\"; DELETE FROM feedback; --",
        "$1 $2 ?; SELECT * FROM api_keys",
        "Robert'); DROP TABLE api_keys;-- 💥 \\ %_",
    ];
    for (i, s) in nasty.iter().enumerate() {
        let r = post(
            &app,
            "/v1/turns",
            &fx.ingest,
            json!({
                "conversation_id": s, "user_message": s, "agent_response": s, "cell": s, "candidates": [s, s]
            }),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let id = r.body["id"].as_i64().unwrap();
        let turn = fx.store.turn(id).await.unwrap().unwrap();
        assert_eq!(
            (
                turn.user_message.as_str(),
                turn.cell.as_str(),
                turn.conversation_id.as_str()
            ),
            (*s, *s, *s)
        );
        let fb = post(
            &app,
            "/v1/feedback",
            &fx.ingest,
            json!({ "turn_id": id, "kind": "comment", "text": s, "idempotency_key": format!("{s}{i}") }),
        )
        .await;
        assert_eq!(fb.status, StatusCode::CREATED, "{}", fb.body);
        assert_eq!(
            fx.store
                .feedback(fb.body["id"].as_i64().unwrap())
                .await
                .unwrap()
                .unwrap()
                .text
                .as_deref(),
            Some(*s)
        );
        let choice = post(&app, "/v1/policy/choose", &fx.ingest, json!({ "cell": s })).await;
        assert_eq!(choice.body["cell"], json!(s));
    }
    let counts = fx.counts().await;
    assert_eq!(
        (counts.turns, counts.feedback, counts.api_keys),
        (5, 5, 3),
        "every table still there, nothing deleted"
    );
    let r = get(
        &app,
        &format!("/v1/feedback/recent?kind={}", "comment%27%20OR%201%3D1--"),
        &fx.read,
    )
    .await;
    assert_eq!(
        (r.status, r.field()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("kind"))
    );
}

async fn rate_limit_answers_429_with_retry_after(fx: &Fixture) {
    let app = fx.app(ServerConfig {
        rate_limit: Some(RateLimit {
            per_second: 0.01,
            burst: 3.0,
        }),
        ..ServerConfig::default()
    });
    for _ in 0..3 {
        assert_eq!(
            get(&app, "/v1/stats/cells", &fx.read).await.status,
            StatusCode::OK
        );
    }
    let r = get(&app, "/v1/stats/cells", &fx.read).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let retry: u64 = r
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    // Another key has its own bucket.
    assert_eq!(
        get(&app, "/v1/stats/cells", &fx.admin).await.status,
        StatusCode::OK
    );
}

async fn health_ready_and_openapi(fx: &Fixture) {
    let app = fx.default_app();
    let r = send(&app, "GET", "/healthz", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&app, "GET", "/readyz", None, None, &[]).await;
    assert_eq!(
        (r.status, r.body["status"].as_str()),
        (StatusCode::OK, Some("ready"))
    );
    let r = send(&app, "GET", "/openapi.json", None, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["openapi"].as_str(), Some("3.0.3"));
    for path in [
        "/v1/turns",
        "/v1/feedback",
        "/v1/policy/choose",
        "/v1/stats/cells",
        "/v1/feedback/recent",
        "/healthz",
        "/readyz",
    ] {
        assert!(r.body["paths"].get(path).is_some(), "{path} documented");
    }
}

async fn keys_are_stored_hashed_and_revocable(fx: &Fixture) {
    let (info, key) = fx
        .store
        .create_key(&Scopes::parse("read,ingest").unwrap(), "agent")
        .await
        .unwrap();
    assert!(fx.store.authenticate(&key).await.unwrap().is_some());
    let listed = fx.store.list_keys().await.unwrap();
    assert!(listed.iter().any(|k| k.id == info.id && k.label == "agent"));
    let text = serde_json::to_string(&listed).unwrap();
    assert!(
        !text.contains(&key[4..]),
        "the key itself is never stored or listed"
    );
    assert!(fx.store.revoke_key(info.id).await.unwrap());
    assert!(!fx.store.revoke_key(info.id).await.unwrap());
    assert!(fx.store.authenticate(&key).await.unwrap().is_none());
}

async fn schema_is_versioned_and_migrations_rerun_cleanly(fx: &Fixture) {
    assert_eq!(
        fx.store.schema_version().await.unwrap(),
        aligndata_server::store::SCHEMA_VERSION
    );
    // Opening again (a restart, a second instance) applies nothing and loses nothing.
    let before = fx.counts().await;
    let again = Store::open(&fx.location, &StoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        again.schema_version().await.unwrap(),
        aligndata_server::store::SCHEMA_VERSION
    );
    assert_eq!(again.counts().await.unwrap(), before);
    again.close().await;
}

async fn bandit_learns_through_the_api(fx: &Fixture) {
    // Two cells, each with a different best arm; the service is driven exactly as an agent would.
    let app = fx.app(ServerConfig {
        arms: vec!["warm".into(), "direct".into(), "questions".into()],
        seed: Some(42),
        rate_limit: None,
        ..ServerConfig::default()
    });
    let rates = |cell: &str, arm: &str| match (cell, arm) {
        ("work", "direct") | ("grief", "warm") => 0.8,
        _ => 0.2,
    };
    use rand::{Rng, SeedableRng};
    let mut world = rand::rngs::StdRng::seed_from_u64(7);
    let mut best_share = Vec::new();
    for round in 0..160 {
        let cell = if round % 2 == 0 { "work" } else { "grief" };
        let c = post(
            &app,
            "/v1/policy/choose",
            &fx.ingest,
            json!({ "cell": cell }),
        )
        .await;
        let arm = c.body["arm"].as_str().unwrap().to_string();
        let turn = post(&app, "/v1/turns", &fx.ingest, json!({
            "conversation_id": format!("sim{round}"), "user_message": "m", "agent_response": "r", "decision_id": c.body["decision_id"]
        }))
        .await;
        let up = world.random::<f64>() < rates(cell, &arm);
        let f = post(
            &app,
            "/v1/feedback",
            &fx.ingest,
            json!({ "turn_id": turn.body["id"], "kind": "thumb", "thumb": if up { "up" } else { "down" } }),
        )
        .await;
        assert_eq!(f.status, StatusCode::CREATED);
        best_share.push(f64::from(u8::from(rates(cell, &arm) > 0.5)));
    }
    let first: f64 = best_share[..40].iter().sum::<f64>() / 40.0;
    let last: f64 = best_share[120..].iter().sum::<f64>() / 40.0;
    assert!(
        last > first && last >= 0.6,
        "best-arm share first 40 rounds {first}, last 40 {last}"
    );
}

/// A key that worked (and is remembered by the server) stops working for writes as soon as it is
/// revoked, also when another process revokes it (here: a second `Store` on the same database,
/// as `aligndata keys revoke` opens one); nothing is stored for the refused requests.
async fn revoked_key_stops_writes_at_once(fx: &Fixture) {
    let app = fx.default_app();
    let (info, key) = fx
        .store
        .create_key(&Scopes::parse("ingest").unwrap(), "agent")
        .await
        .unwrap();
    let turn_id = new_turn(&app, &key, json!({})).await;
    let thumb = |n: u32| json!({ "turn_id": turn_id, "kind": "thumb", "thumb": "up", "idempotency_key": format!("k{n}") });
    assert_eq!(
        post(&app, "/v1/feedback", &key, thumb(1)).await.status,
        StatusCode::CREATED
    );
    assert_eq!(
        post(&app, "/v1/policy/choose", &key, json!({ "cell": "c" }))
            .await
            .status,
        StatusCode::OK
    );

    let other = Store::open(
        &fx.location,
        &StoreOptions {
            max_connections: 2,
            ..StoreOptions::default()
        },
    )
    .await
    .unwrap();
    assert!(other.revoke_key(info.id).await.unwrap());
    other.close().await;
    let before = fx.counts().await;
    for (path, body) in [
        ("/v1/feedback", thumb(2)),
        (
            "/v1/turns",
            json!({ "conversation_id": "c1", "user_message": "m", "agent_response": "r" }),
        ),
        ("/v1/policy/choose", json!({ "cell": "c" })),
    ] {
        let r = post(&app, path, &key, body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}: {}", r.body);
        assert_eq!(
            r.headers
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap()),
            Some("Bearer")
        );
    }
    // A replay of what was stored before the revocation is refused too.
    assert_eq!(
        post(&app, "/v1/feedback", &key, thumb(1)).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        fx.counts().await,
        before,
        "nothing stored with a revoked key"
    );
    // The other keys still work.
    assert_eq!(
        post(&app, "/v1/feedback", &fx.ingest, thumb(3))
            .await
            .status,
        StatusCode::CREATED
    );
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fx = super::Fixture::sqlite().await;
                    super::$name(&fx).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fx) = super::Fixture::postgres().await else { return };
                    super::$name(&fx).await;
                }
            )*
        }
    };
}

suite!(
    loop_choose_turn_feedback_updates_posterior,
    turn_without_cell_is_labelled_and_scrubbed,
    idempotent_retries_are_stored_once,
    concurrent_retries_are_stored_once,
    bad_requests_get_the_right_4xx_and_change_nothing,
    sql_injection_strings_are_stored_verbatim,
    rate_limit_answers_429_with_retry_after,
    health_ready_and_openapi,
    keys_are_stored_hashed_and_revocable,
    schema_is_versioned_and_migrations_rerun_cleanly,
    bandit_learns_through_the_api,
    revoked_key_stops_writes_at_once,
);
