//! The HTTP API: routes, shared state, and the server loop.
//!
//! Routes and what they need (see `openapi.json` beside this file for the request shapes):
//!
//! | route | scope | |
//! |---|---|---|
//! | `POST /v1/turns` | ingest | record a turn (idempotent with a key) |
//! | `POST /v1/feedback` | ingest | thumb, rating, comment, correction or pairwise choice |
//! | `POST /v1/policy/choose` | ingest | Thompson-sampling arm for a cell, with its propensity |
//! | `GET /v1/stats/cells` | read | per-cell, per-arm reward counters and posteriors |
//! | `GET /v1/feedback/recent` | read | newest feedback first |
//! | `GET /v1/policy/offpolicy` | read | IPS/SNIPS estimate of `?policy=greedy\|uniform\|logging\|arm=NAME` |
//! | `GET /healthz`, `/readyz`, `/openapi.json` | none | liveness, database reachability, the spec |

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tower_http::catch_panic::CatchPanicLayer;

use crate::policy::{Labeller, SingleCell, ThompsonConfig};
use crate::store::Store;

pub mod auth;
pub mod body;
pub mod error;
pub mod evaluate;
pub mod handlers;

pub use auth::RateLimit;

/// The OpenAPI 3 document served at `/openapi.json`; edit it with the routes.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// Rewrites user-written text before it is stored (PII scrubbing). Applied to user messages,
/// comments and corrections.
pub type Scrubber = Arc<dyn Fn(&str) -> String + Send + Sync>;

/// How the service behaves. `Default` gives one arm named `default`, no scrubbing, one cell.
#[derive(Clone)]
pub struct ServerConfig {
    /// The policy's arms (response strategies), non-empty and distinct.
    pub arms: Vec<String>,
    /// Logged with every decision, so that data from different policies can be told apart.
    pub policy_version: String,
    pub thompson: ThompsonConfig,
    /// Largest request body in bytes (413 beyond).
    pub body_limit: usize,
    /// Per-key rate limit; `None` for none.
    pub rate_limit: Option<RateLimit>,
    /// Puts user messages into cells when the client gives no cell.
    pub labeller: Arc<dyn Labeller>,
    /// PII scrubber for user-written text.
    pub scrubber: Scrubber,
    /// Seed of the policy's random draws (reproducible simulations); `None`: OS-seeded.
    pub seed: Option<u64>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            arms: vec!["default".into()],
            policy_version: "thompson-v1".into(),
            thompson: ThompsonConfig::default(),
            body_limit: 64 * 1024,
            rate_limit: Some(RateLimit {
                per_second: 1000.0,
                burst: 2000.0,
            }),
            labeller: Arc::new(SingleCell::default()),
            scrubber: Arc::new(|s: &str| s.to_string()),
            seed: None,
        }
    }
}

impl ServerConfig {
    /// Checks the configuration; the error says what to change.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.arms.is_empty() {
            anyhow::bail!("no arms configured: give at least one (e.g. --arms warm,direct)");
        }
        for (i, arm) in self.arms.iter().enumerate() {
            if arm.trim().is_empty() || arm.len() > 256 {
                anyhow::bail!("arm names must be 1 to 256 bytes, got `{arm}`");
            }
            if self.arms[..i].contains(arm) {
                anyhow::bail!("arm `{arm}` is listed twice");
            }
        }
        if !(0.0..1.0).contains(&self.thompson.floor) {
            anyhow::bail!(
                "the exploration floor must be in [0, 1), got {}",
                self.thompson.floor
            );
        }
        if let Some(limit) = self.rate_limit
            && (limit.per_second <= 0.0 || limit.burst < 1.0)
        {
            anyhow::bail!("rate limit needs a positive rate and a burst of at least 1");
        }
        Ok(())
    }
}

pub(crate) struct Inner {
    pub store: Store,
    pub config: ServerConfig,
    pub limiter: Option<auth::RateLimiter>,
    pub seeded_rng: Option<std::sync::Mutex<rand::rngs::StdRng>>,
    /// The policy's last estimate per cell (see [`crate::policy::ProbabilityCache`]).
    pub probabilities: crate::policy::ProbabilityCache,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

/// The service's routes over `store`.
pub fn router(store: Store, config: ServerConfig) -> anyhow::Result<Router> {
    config.validate()?;
    let body_limit = config.body_limit;
    let limiter = config.rate_limit.map(auth::RateLimiter::new);
    let seeded_rng = config
        .seed
        .map(|seed| std::sync::Mutex::new(rand::SeedableRng::seed_from_u64(seed)));
    let state = AppState {
        inner: Arc::new(Inner {
            store,
            config,
            limiter,
            seeded_rng,
            probabilities: crate::policy::ProbabilityCache::default(),
        }),
    };
    Ok(Router::new()
        .route("/v1/turns", post(handlers::post_turn))
        .route("/v1/feedback", post(handlers::post_feedback))
        .route("/v1/policy/choose", post(handlers::post_choose))
        .route("/v1/stats/cells", get(handlers::get_cell_stats))
        .route("/v1/policy/offpolicy", get(evaluate::get_offpolicy))
        .route("/v1/feedback/recent", get(handlers::get_recent_feedback))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/openapi.json", get(handlers::openapi))
        .fallback(handlers::not_found)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| {
                eprintln!("aligndata serve: a request handler panicked");
                error::ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
                    .into_response()
            },
        ))
        .with_state(state))
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
