//! The endpoints. Each validates its request completely before touching the store, so a rejected
//! request changes nothing.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{Authed, Ingest, Read};
use super::body::JsonBody;
use super::error::ApiError;
use crate::store::{Feedback, FeedbackKind, NewDecision, NewFeedback, NewTurn, Receipt, Turn};

/// Longest conversation id, cell key, policy version, idempotency key, client timestamp.
const MAX_SHORT: usize = 256;
/// Longest message, response, comment, correction or candidate (bytes).
const MAX_TEXT: usize = 32 * 1024;
/// Most candidates per turn.
const MAX_CANDIDATES: usize = 16;
/// Most rows `GET /v1/feedback/recent` returns.
const MAX_RECENT: i64 = 1000;

const REPLAYED: &str = "idempotent-replayed";

fn check_short(field: &str, value: &str, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.len() > MAX_SHORT {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {MAX_SHORT} bytes"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not contain control characters"),
        ));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, required: bool) -> Result<(), ApiError> {
    if required && value.trim().is_empty() {
        return Err(ApiError::invalid(
            field,
            format!("{field} must not be empty"),
        ));
    }
    if value.len() > MAX_TEXT {
        return Err(ApiError::invalid(
            field,
            format!("{field} is longer than {MAX_TEXT} bytes"),
        ));
    }
    Ok(())
}

/// The idempotency key from the `Idempotency-Key` header or the body's `idempotency_key`; both
/// may be given only when equal.
fn idempotency_key(headers: &HeaderMap, body: Option<String>) -> Result<Option<String>, ApiError> {
    let header = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    ApiError::invalid("idempotency_key", "Idempotency-Key header is not ASCII")
                })?
                .to_string(),
        ),
        None => None,
    };
    let key = match (header, body) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::invalid(
                "idempotency_key",
                "Idempotency-Key header and idempotency_key field differ",
            ));
        }
        (Some(h), _) => Some(h),
        (None, b) => b,
    };
    if let Some(k) = &key {
        check_short("idempotency_key", k, true)?;
    }
    Ok(key)
}

fn created(body: Value, replayed: bool) -> Response {
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    if replayed {
        response
            .headers_mut()
            .insert(REPLAYED, HeaderValue::from_static("true"));
    }
    response
}

// ---- POST /v1/turns ------------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TurnRequest {
    conversation_id: String,
    user_message: String,
    agent_response: String,
    #[serde(default)]
    policy_version: Option<String>,
    #[serde(default)]
    cell: Option<String>,
    #[serde(default)]
    decision_id: Option<i64>,
    #[serde(default)]
    candidates: Vec<String>,
    #[serde(default)]
    client_ts: Option<String>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

fn turn_json(turn: &Turn) -> Value {
    json!({
        "id": turn.id,
        "conversation_id": turn.conversation_id,
        "cell": turn.cell,
        "arm": turn.arm,
        "propensity": turn.propensity,
        "decision_id": turn.decision_id,
        "policy_version": turn.policy_version,
        "server_ts": turn.server_ts,
    })
}

pub async fn post_turn(
    State(state): State<AppState>,
    auth: Authed<Ingest>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<TurnRequest>,
) -> Result<Response, ApiError> {
    check_short("conversation_id", &req.conversation_id, true)?;
    check_text("user_message", &req.user_message, true)?;
    check_text("agent_response", &req.agent_response, false)?;
    if let Some(v) = &req.policy_version {
        check_short("policy_version", v, true)?;
    }
    if let Some(cell) = &req.cell {
        check_short("cell", cell, true)?;
    }
    if let Some(ts) = &req.client_ts {
        check_short("client_ts", ts, true)?;
    }
    if req.candidates.len() > MAX_CANDIDATES {
        return Err(ApiError::invalid(
            "candidates",
            format!("at most {MAX_CANDIDATES} candidates"),
        ));
    }
    for (i, c) in req.candidates.iter().enumerate() {
        check_text(&format!("candidates[{i}]"), c, false)?;
    }
    let key = idempotency_key(&headers, req.idempotency_key)?;
    let inner = &state.inner;
    // Label the original message (the labeller sees everything; only the scrubbed text is stored).
    let labelled_cell = if req.cell.is_none() && req.decision_id.is_none() {
        inner.config.labeller.cell(&req.user_message)
    } else {
        String::new()
    };
    let new = NewTurn {
        conversation_id: req.conversation_id,
        user_message: (inner.config.scrubber)(&req.user_message),
        agent_response: req.agent_response,
        policy_version: req.policy_version,
        cell: req.cell,
        labelled_cell,
        decision_id: req.decision_id,
        candidates: req.candidates,
        client_ts: req.client_ts,
        idempotency_key: key,
        key_id: Some(auth.key.id),
    };
    let Receipt { value, replayed } = inner.store.record_turn(&new).await?;
    Ok(created(turn_json(&value), replayed))
}

// ---- POST /v1/feedback ---------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    turn_id: i64,
    kind: String,
    #[serde(default)]
    thumb: Option<String>,
    #[serde(default)]
    rating: Option<i64>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    chosen: Option<i64>,
    #[serde(default)]
    rejected: Option<i64>,
    #[serde(default)]
    idempotency_key: Option<String>,
}

/// Which optional fields each kind takes; any other one present is an error naming it.
fn fields_for(kind: FeedbackKind) -> &'static [&'static str] {
    match kind {
        FeedbackKind::Thumb => &["thumb"],
        FeedbackKind::Rating => &["rating"],
        FeedbackKind::Comment | FeedbackKind::Correction => &["text"],
        FeedbackKind::Pairwise => &["chosen", "rejected"],
    }
}

/// What a feedback event does to the turn's arm posterior: thumb up and rating ≥ 4 are
/// successes; thumb down and rating ≤ 3 failures; a correction is a failure (the user had to
/// rewrite the answer); comments and pairwise choices between candidates leave it alone.
pub fn reward(kind: FeedbackKind, value: Option<f64>) -> Option<bool> {
    match kind {
        FeedbackKind::Thumb => value.map(|v| v >= 1.0),
        FeedbackKind::Rating => value.map(|v| v >= 4.0),
        FeedbackKind::Correction => Some(false),
        FeedbackKind::Comment | FeedbackKind::Pairwise => None,
    }
}

fn feedback_json(f: &Feedback) -> Value {
    json!({
        "id": f.id,
        "turn_id": f.turn_id,
        "kind": f.kind,
        "value": f.value,
        "rejected": f.rejected,
        "text": f.text,
        "reward": f.reward,
        "cell": f.cell,
        "arm": f.arm,
        "server_ts": f.server_ts,
    })
}

pub async fn post_feedback(
    State(state): State<AppState>,
    auth: Authed<Ingest>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<FeedbackRequest>,
) -> Result<Response, ApiError> {
    let kind = FeedbackKind::parse(&req.kind).ok_or_else(|| {
        ApiError::invalid(
            "kind",
            "kind must be one of thumb, rating, comment, correction, pairwise",
        )
    })?;
    if req.turn_id <= 0 {
        return Err(ApiError::invalid(
            "turn_id",
            "turn_id must be a positive integer",
        ));
    }
    let present = [
        ("thumb", req.thumb.is_some()),
        ("rating", req.rating.is_some()),
        ("text", req.text.is_some()),
        ("chosen", req.chosen.is_some()),
        ("rejected", req.rejected.is_some()),
    ];
    let allowed = fields_for(kind);
    if let Some((field, _)) = present.iter().find(|(f, p)| *p && !allowed.contains(f)) {
        return Err(ApiError::invalid(
            field,
            format!("{field} does not apply to {} feedback", kind.as_str()),
        ));
    }
    if let Some((field, _)) = present.iter().find(|(f, p)| !*p && allowed.contains(f)) {
        return Err(ApiError::invalid(
            field,
            format!("{} feedback needs {field}", kind.as_str()),
        ));
    }
    let scrub = &state.inner.config.scrubber;
    let (value, rejected, text) = match kind {
        FeedbackKind::Thumb => match req.thumb.as_deref() {
            Some("up") => (Some(1.0), None, None),
            Some("down") => (Some(0.0), None, None),
            _ => {
                return Err(ApiError::invalid(
                    "thumb",
                    "thumb must be \"up\" or \"down\"",
                ));
            }
        },
        FeedbackKind::Rating => match req.rating {
            Some(r @ 1..=5) => (Some(r as f64), None, None),
            _ => {
                return Err(ApiError::invalid(
                    "rating",
                    "rating must be an integer from 1 to 5",
                ));
            }
        },
        FeedbackKind::Comment | FeedbackKind::Correction => {
            let text = req.text.unwrap_or_default();
            check_text("text", &text, true)?;
            (None, None, Some(scrub(&text)))
        }
        FeedbackKind::Pairwise => {
            let (chosen, rejected) = (req.chosen.unwrap_or(-1), req.rejected.unwrap_or(-1));
            if chosen < 0 {
                return Err(ApiError::invalid(
                    "chosen",
                    "chosen must be a candidate index ≥ 0",
                ));
            }
            if rejected < 0 || rejected == chosen {
                return Err(ApiError::invalid(
                    "rejected",
                    "rejected must be a candidate index ≥ 0, not chosen",
                ));
            }
            (Some(chosen as f64), Some(rejected), None)
        }
    };
    let key = idempotency_key(&headers, req.idempotency_key)?;
    let new = NewFeedback {
        turn_id: req.turn_id,
        kind,
        value,
        rejected,
        text,
        reward: reward(kind, value),
        idempotency_key: key,
        key_id: Some(auth.key.id),
    };
    let Receipt { value, replayed } = state.inner.store.record_feedback(&new).await?;
    Ok(created(feedback_json(&value), replayed))
}

// ---- POST /v1/policy/choose ----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChooseRequest {
    #[serde(default)]
    cell: Option<String>,
    #[serde(default)]
    user_message: Option<String>,
}

pub async fn post_choose(
    State(state): State<AppState>,
    auth: Authed<Ingest>,
    JsonBody(req): JsonBody<ChooseRequest>,
) -> Result<Response, ApiError> {
    let inner = &state.inner;
    let cell = match (req.cell, req.user_message) {
        (Some(cell), _) => {
            check_short("cell", &cell, true)?;
            cell
        }
        (None, Some(message)) => {
            check_text("user_message", &message, true)?;
            inner.config.labeller.cell(&message)
        }
        (None, None) => return Err(ApiError::invalid("cell", "give cell or user_message")),
    };
    let counts = inner.store.arm_counts(&cell, &inner.config.arms).await?;
    let choice = match &inner.seeded_rng {
        Some(rng) => {
            let mut rng = rng.lock().unwrap_or_else(|p| p.into_inner());
            inner
                .probabilities
                .choose(&cell, &counts, &inner.config.thompson, &mut *rng)
        }
        None => {
            inner
                .probabilities
                .choose(&cell, &counts, &inner.config.thompson, &mut rand::rng())
        }
    }
    .ok_or_else(|| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "no arms configured"))?;
    let decision_id = inner
        .store
        .record_decision(&NewDecision {
            cell: cell.clone(),
            arm: choice.arm.clone(),
            propensity: choice.propensity,
            probabilities: choice.probabilities.clone(),
            policy_version: inner.config.policy_version.clone(),
            key_id: Some(auth.key.id),
        })
        .await?;
    let probabilities: serde_json::Map<String, Value> = choice
        .probabilities
        .iter()
        .map(|(a, p)| (a.clone(), json!(p)))
        .collect();
    Ok((
        StatusCode::OK,
        Json(json!({
            "decision_id": decision_id,
            "cell": cell,
            "arm": choice.arm,
            "propensity": choice.propensity,
            "probabilities": probabilities,
            "policy_version": inner.config.policy_version,
        })),
    )
        .into_response())
}

// ---- reads ---------------------------------------------------------------------------------------

pub async fn get_cell_stats(
    State(state): State<AppState>,
    _auth: Authed<Read>,
) -> Result<Response, ApiError> {
    let cells = state.inner.store.cell_stats().await?;
    let prior = &state.inner.config.thompson;
    let cells: Vec<Value> = cells
        .iter()
        .map(|c| {
            let (s, f, t) = c.arms.iter().fold((0, 0, 0), |acc, a| {
                (acc.0 + a.successes, acc.1 + a.failures, acc.2 + a.turns)
            });
            let arms: Vec<Value> = c
                .arms
                .iter()
                .map(|a| {
                    let alpha = prior.prior_alpha + a.successes as f64;
                    let beta = prior.prior_beta + a.failures as f64;
                    json!({
                        "arm": a.arm,
                        "successes": a.successes,
                        "failures": a.failures,
                        "turns": a.turns,
                        "alpha": alpha,
                        "beta": beta,
                        "posterior_mean": alpha / (alpha + beta),
                    })
                })
                .collect();
            json!({
                "cell": c.cell,
                "successes": s,
                "failures": f,
                "turns": t,
                "reward_rate": if s + f > 0 { Some(s as f64 / (s + f) as f64) } else { None },
                "arms": arms,
            })
        })
        .collect();
    Ok(Json(json!({ "cells": cells })).into_response())
}

pub async fn get_recent_feedback(
    State(state): State<AppState>,
    _auth: Authed<Read>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    for name in query.keys() {
        if !["limit", "kind", "before"].contains(&name.as_str()) {
            return Err(ApiError::invalid(
                name,
                format!("unknown query parameter `{name}`"),
            ));
        }
    }
    let limit = match query.get("limit") {
        Some(v) => match v.parse::<i64>() {
            Ok(n @ 1..=MAX_RECENT) => n,
            _ => {
                return Err(ApiError::invalid(
                    "limit",
                    format!("limit must be an integer from 1 to {MAX_RECENT}"),
                ));
            }
        },
        None => 50,
    };
    let kind = match query.get("kind") {
        Some(k) => Some(FeedbackKind::parse(k).ok_or_else(|| {
            ApiError::invalid(
                "kind",
                "kind must be one of thumb, rating, comment, correction, pairwise",
            )
        })?),
        None => None,
    };
    let before = match query.get("before") {
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::invalid("before", "before must be a feedback id"))?,
        ),
        None => None,
    };
    let rows = state
        .inner
        .store
        .recent_feedback(limit, kind, before)
        .await?;
    let items: Vec<Value> = rows.iter().map(feedback_json).collect();
    Ok(Json(json!({ "feedback": items })).into_response())
}

pub async fn healthz() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = &state.inner.store;
    match store.ping().await {
        Ok(()) => Json(json!({ "status": "ready", "backend": store.kind() })).into_response(),
        Err(err) => {
            eprintln!("aligndata serve: not ready: {err}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({ "status": "unavailable", "error": "database unreachable" })),
            )
                .into_response()
        }
    }
}

pub async fn openapi() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        super::OPENAPI_JSON,
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint; see /openapi.json")
}
