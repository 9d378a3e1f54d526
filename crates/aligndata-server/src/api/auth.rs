//! Authentication (`Authorization: Bearer KEY`), scopes, and per-key rate limiting.
//!
//! Why extractors: a handler names the scope it needs in its signature (`Authed<Ingest>`), and
//! the check runs before the body is read, so an unauthenticated client cannot make the server
//! buffer 64 KiB. Why an in-memory token bucket: it costs a mutex and no database round trip;
//! with several instances each enforces the limit separately (a key gets N× the rate), which is
//! acceptable for abuse protection and documented.
//!
//! Why write requests skip the key lookup once a key was seen live: at thousands of events per
//! second that lookup was a database round trip per request. Revocation is not weakened: the
//! store's group commit re-checks each write's key inside the transaction that stores it, so a
//! key revoked by any process is refused from the next commit on (401, nothing stored). Reads
//! (`read` scope) look the key up every time.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::AppState;
use super::error::ApiError;
use crate::keys::Scope;
use crate::store::ApiKeyInfo;

/// A scope a handler requires, as a type.
pub trait RequiredScope {
    const SCOPE: Scope;
    /// Whether every handler needing this scope acts only by writes through the store's group
    /// commit, with the caller's key id on each: then the key is checked against the keys
    /// found live before (no database round trip), and the commit re-checks revocation in its
    /// own transaction ([`crate::Store::authenticate_for_write`]).
    const WRITES_ONLY: bool;
}

/// Marker: the `ingest` scope.
pub struct Ingest;
/// Marker: the `read` scope.
pub struct Read;

impl RequiredScope for Ingest {
    const SCOPE: Scope = Scope::Ingest;
    // `POST /v1/turns`, `/v1/feedback`, `/v1/policy/choose` (whose decision is logged).
    const WRITES_ONLY: bool = true;
}
impl RequiredScope for Read {
    const SCOPE: Scope = Scope::Read;
    const WRITES_ONLY: bool = false;
}

/// An authenticated, authorised, rate-limited caller.
pub struct Authed<S> {
    pub key: ApiKeyInfo,
    _scope: PhantomData<S>,
}

impl<S: RequiredScope + Send + Sync> FromRequestParts<AppState> for Authed<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing API key: send `Authorization: Bearer KEY`",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= 256)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "malformed Authorization header: expected `Bearer KEY`",
                )
            })?;
        let store = &state.inner.store;
        let key = if S::WRITES_ONLY {
            store.authenticate_for_write(token).await?
        } else {
            store.authenticate(token).await?
        };
        let key = key
            .ok_or_else(|| ApiError::new(StatusCode::UNAUTHORIZED, "invalid or revoked API key"))?;
        if let Some(limiter) = &state.inner.limiter
            && let Err(wait) = limiter.check(key.id)
        {
            let mut err = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate limit exceeded for this key",
            );
            err.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(err);
        }
        if !key.scopes.allows(S::SCOPE) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("this key lacks the `{}` scope", S::SCOPE),
            ));
        }
        Ok(Authed {
            key,
            _scope: PhantomData,
        })
    }
}

/// Requests per second and burst allowed per key.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// Token buckets, one per key id.
pub struct RateLimiter {
    limit: RateLimit,
    buckets: Mutex<HashMap<i64, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(limit: RateLimit) -> RateLimiter {
        RateLimiter {
            limit,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key_id`, or says how long until one is available.
    pub fn check(&self, key_id: i64) -> Result<(), Duration> {
        self.check_at(key_id, Instant::now())
    }

    fn check_at(&self, key_id: i64, now: Instant) -> Result<(), Duration> {
        let rate = self.limit.per_second.max(1e-9);
        let burst = self.limit.burst.max(1.0);
        // A poisoned lock only means another request panicked mid-update; the counts are still
        // usable.
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let (tokens, last) = buckets.entry(key_id).or_insert((burst, now));
        let elapsed = now.saturating_duration_since(*last).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_refills_at_the_rate() {
        let limiter = RateLimiter::new(RateLimit {
            per_second: 10.0,
            burst: 3.0,
        });
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(1, t0).is_ok());
        }
        let wait = limiter.check_at(1, t0).unwrap_err();
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(
            limiter.check_at(2, t0).is_ok(),
            "keys have separate buckets"
        );
        assert!(limiter.check_at(1, t0 + Duration::from_millis(110)).is_ok());
    }
}
