//! The reads behind `aligndata feedback export|offpolicy` and `plan --from-feedback`, and the
//! `GET /v1/policy/offpolicy` endpoint, on both stores: a real SQLite file always, a real
//! PostgreSQL server when `ALIGNDATA_TEST_PG_URL` is set (a fresh schema per test, as in
//! `suite.rs`); without it the PostgreSQL half prints a visible skip message.

use aligndata_server::offpolicy::{TargetPolicy, evaluate};
use aligndata_server::store::{FeedbackKind, NewDecision, NewFeedback, NewTurn, StoreOptions};
use aligndata_server::{Location, Scopes, ServerConfig, Store, api};
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt;

async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let location = Location::Sqlite(dir.path().join("feedback.db"));
    let store = Store::open(&location, &StoreOptions::default())
        .await
        .unwrap();
    (store, dir)
}

async fn postgres() -> Option<Store> {
    let Ok(url) = std::env::var("ALIGNDATA_TEST_PG_URL") else {
        eprintln!(
            "skipped: set ALIGNDATA_TEST_PG_URL to run the PostgreSQL tests (scripts/test.sh does)"
        );
        return None;
    };
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
    Some(
        Store::open(&location, &StoreOptions::default())
            .await
            .unwrap(),
    )
}

fn turn(conv: &str, cell: Option<&str>, decision_id: Option<i64>) -> NewTurn {
    NewTurn {
        conversation_id: conv.into(),
        user_message: format!("message of {conv}"),
        agent_response: format!("answer to {conv}"),
        policy_version: None,
        cell: cell.map(str::to_string),
        labelled_cell: "unlabelled".into(),
        decision_id,
        candidates: vec!["one".into(), "two".into()],
        client_ts: None,
        idempotency_key: None,
        key_id: None,
    }
}

fn thumb(turn_id: i64, up: bool) -> NewFeedback {
    NewFeedback {
        turn_id,
        kind: FeedbackKind::Thumb,
        value: Some(if up { 1.0 } else { 0.0 }),
        rejected: None,
        text: None,
        reward: Some(up),
        idempotency_key: None,
        key_id: None,
    }
}

async fn reads_page_and_aggregate(store: Store) {
    // Three bandit turns in cell x: warm (up, up), direct (down), warm (no feedback).
    let mut turn_ids = Vec::new();
    for (i, (arm, p)) in [("warm", 0.7), ("direct", 0.3), ("warm", 0.6)]
        .into_iter()
        .enumerate()
    {
        let decision = store
            .record_decision(&NewDecision {
                cell: "x".into(),
                arm: arm.into(),
                propensity: p,
                probabilities: ["warm", "direct"]
                    .iter()
                    .map(|a| (a.to_string(), if *a == arm { p } else { 1.0 - p }))
                    .collect(),
                policy_version: "v1".into(),
                key_id: None,
            })
            .await
            .unwrap();
        let t = store
            .record_turn(&turn(&format!("b{i}"), None, Some(decision)))
            .await
            .unwrap()
            .value;
        turn_ids.push(t.id);
    }
    store
        .record_feedback(&thumb(turn_ids[0], true))
        .await
        .unwrap();
    store
        .record_feedback(&thumb(turn_ids[0], true))
        .await
        .unwrap();
    store
        .record_feedback(&thumb(turn_ids[1], false))
        .await
        .unwrap();
    // A plain turn in cell y with a correction and a pairwise choice.
    let y = store
        .record_turn(&turn("plain", Some("y"), None))
        .await
        .unwrap()
        .value
        .id;
    let correction = NewFeedback {
        kind: FeedbackKind::Correction,
        value: None,
        text: Some("a better answer".into()),
        reward: Some(false),
        ..thumb(y, false)
    };
    store.record_feedback(&correction).await.unwrap();
    let pairwise = NewFeedback {
        kind: FeedbackKind::Pairwise,
        value: Some(1.0),
        rejected: Some(0),
        reward: None,
        ..thumb(y, false)
    };
    store.record_feedback(&pairwise).await.unwrap();

    // Turns with feedback, paged two at a time: b0, b1, then plain; b2 (no feedback) never.
    let first = store.turns_with_feedback(0, 2).await.unwrap();
    assert_eq!(
        first
            .iter()
            .map(|t| t.turn.conversation_id.as_str())
            .collect::<Vec<_>>(),
        ["b0", "b1"]
    );
    assert_eq!(first[0].feedback.len(), 2);
    let second = store
        .turns_with_feedback(first[1].turn.id, 2)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].turn.cell, "y");
    let kinds: Vec<FeedbackKind> = second[0].feedback.iter().map(|f| f.kind).collect();
    assert_eq!(kinds, [FeedbackKind::Correction, FeedbackKind::Pairwise]);
    assert!(
        store
            .turns_with_feedback(second[0].turn.id, 2)
            .await
            .unwrap()
            .is_empty()
    );

    // The decision log: three decisions, rewards where feedback carried one.
    let log = store.logged_decisions(0, 100).await.unwrap();
    assert_eq!(log.len(), 3);
    assert_eq!(
        log.iter().map(|d| d.reward()).collect::<Vec<_>>(),
        [Some(1.0), Some(0.0), None]
    );
    assert_eq!(log[1].arm, "direct");
    assert!((log[1].propensity - 0.3).abs() < 1e-12);
    assert_eq!(log[1].probabilities[0].0, "direct", "sorted by arm");
    let report = evaluate(&log, &TargetPolicy::Logging);
    assert_eq!((report.outcomes, report.logged_value), (2, Some(0.5)));

    // Per cell: every turn counts; rewards from thumbs and corrections.
    let cells = store.cell_feedback().await.unwrap();
    let x = cells.iter().find(|c| c.cell == "x").unwrap();
    assert_eq!((x.turns, x.successes, x.failures), (3, 2, 1));
    let y = cells.iter().find(|c| c.cell == "y").unwrap();
    assert_eq!((y.turns, y.successes, y.failures), (1, 0, 1));

    // The endpoint: read scope, the same figures, a bad policy named.
    let read = store
        .create_key(&Scopes::parse("read").unwrap(), "read")
        .await
        .unwrap()
        .1;
    let ingest = store
        .create_key(&Scopes::parse("ingest").unwrap(), "ingest")
        .await
        .unwrap()
        .1;
    let app = api::router(store.clone(), ServerConfig::default()).unwrap();
    let get = |path: &str, key: &str| {
        Request::builder()
            .uri(path)
            .header("authorization", format!("Bearer {key}"))
            .body(Body::empty())
            .unwrap()
    };
    let reply = app
        .clone()
        .oneshot(get("/v1/policy/offpolicy?policy=arm%3Dwarm", &read))
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = serde_json::from_slice(
        &axum::body::to_bytes(reply.into_body(), 1 << 20)
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(body["policy"], "arm=warm");
    assert_eq!(body["snips"], 1.0);
    assert_eq!(body["outcomes"], 2);
    let forbidden = app
        .clone()
        .oneshot(get("/v1/policy/offpolicy", &ingest))
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let bad = app
        .oneshot(get("/v1/policy/offpolicy?policy=best", &read))
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_page_and_aggregate() {
    let (store, _dir) = sqlite().await;
    reads_page_and_aggregate(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_page_and_aggregate() {
    if let Some(store) = postgres().await {
        reads_page_and_aggregate(store).await;
    }
}
