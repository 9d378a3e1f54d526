//! The online feedback service behind `aligndata serve`.
//!
//! A live support agent calls this service before answering ("which response strategy for this
//! message?") and after ("here is the turn; here is the thumbs-down; here is the user's edit").
//! It stores turns and feedback durably, learns per taxonomy cell which strategy works with a
//! Thompson-sampling bandit, and logs every decision's propensity so that other policies can be
//! evaluated offline (IPS/SNIPS) and feedback exported as training data.
//!
//! # Pieces
//!
//! - [`store::Store`]: one API over SQLite (WAL, `synchronous=FULL`; the default, a file) and
//!   PostgreSQL (a URL; several instances can share it). Embedded migrations, parameterised
//!   queries only. A write is acknowledged only once committed, so it survives kill -9;
//!   concurrent writes share one transaction and one fsync (group commit, `store/writer.rs`).
//! - [`api::router`]: the axum routes (`/v1/turns`, `/v1/feedback`, `/v1/policy/choose`,
//!   `/v1/stats/cells`, `/v1/feedback/recent`, `/v1/policy/offpolicy`, `/healthz`, `/readyz`,
//!   `/openapi.json`), with API keys and scopes, a body limit, per-key rate limits and JSON
//!   errors naming the field.
//! - [`policy`]: Thompson sampling over Beta posteriors per (cell, arm), the [`policy::Labeller`]
//!   hook that puts messages into cells, and off-policy estimates.
//! - [`offpolicy`]: IPS/SNIPS of greedy, uniform or fixed-arm policies on the decision log, and
//!   its Vowpal Wabbit contextual-bandit export.
//! - [`keys`]: key generation (32 random bytes, shown once) and hashing (SHA-256 at rest).
//!
//! # Use
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use aligndata_server::{ServerConfig, Store, StoreOptions, api};
//! let store = Store::open(&"sqlite:feedback.db".parse()?, &StoreOptions::default()).await?;
//! let config = ServerConfig { arms: vec!["warm".into(), "direct".into()], ..ServerConfig::default() };
//! let router = api::router(store, config)?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! api::serve(listener, router, api::shutdown_signal()).await?;
//! # Ok(()) }
//! ```
//!
//! The crate has no command-line parsing; `aligndata serve` and `aligndata keys` wire it up.

pub mod api;
pub mod keys;
pub mod offpolicy;
pub mod policy;
pub mod store;

pub use api::{RateLimit, Scrubber, ServerConfig, router};
pub use keys::{Scope, Scopes};
pub use store::{Location, Store, StoreError, StoreOptions};
