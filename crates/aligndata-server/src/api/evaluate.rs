//! `GET /v1/policy/offpolicy`: the off-policy estimates of `aligndata feedback offpolicy`, over
//! HTTP (read scope). Reads the whole decision log per request (paged from the database), so
//! it is meant for dashboards polling now and then, not for every turn.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::auth::{Authed, Read};
use super::error::ApiError;
use crate::offpolicy::{TargetPolicy, evaluate};

/// Decisions read per database round trip.
const PAGE: i64 = 10_000;

pub async fn get_offpolicy(
    State(state): State<AppState>,
    _auth: Authed<Read>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if let Some(name) = query.keys().find(|k| k.as_str() != "policy") {
        return Err(ApiError::invalid(
            name,
            format!("unknown query parameter `{name}`"),
        ));
    }
    let policy: TargetPolicy = query
        .get("policy")
        .map(String::as_str)
        .unwrap_or("greedy")
        .parse()
        .map_err(|e: String| ApiError::invalid("policy", e))?;
    let store = &state.inner.store;
    let mut log = Vec::new();
    let mut after = 0;
    loop {
        let page = store.logged_decisions(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.turn_id;
        log.extend(page);
    }
    Ok(Json(evaluate(&log, &policy)).into_response())
}
