//! Storage: one API over SQLite (a file) and PostgreSQL (a URL).
//!
//! Why two concrete pools behind one enum rather than sqlx's `Any` driver: each backend keeps its
//! own connection settings (SQLite WAL + `synchronous=FULL` + one writer connection; PostgreSQL
//! advisory locks), while the query text is shared: every query is a `&'static str` with `$n`
//! placeholders, which both drivers accept, so values only ever travel as bound parameters and
//! nothing user-supplied is spliced into SQL. The [`on_backend!`] macro expands the same body once
//! per backend, so the two implementations cannot drift apart.
//!
//! Durability: a write is acknowledged only after its transaction commits. SQLite commits with
//! `synchronous=FULL` in WAL mode (the WAL is fsynced on every commit); PostgreSQL with its default
//! `synchronous_commit=on`. Either survives a kill -9 of the server right after the reply, and a
//! power cut too. Why FULL and not NORMAL (the usual WAL pairing): NORMAL also survives kill -9
//! (the WAL is in the OS page cache) but can lose the last commits on power loss, and an
//! acknowledged event should not vanish; group commit (below) makes FULL's fsync cheap enough.
//!
//! Throughput: turns, feedback and decisions go through a group commit (`writer.rs`): the store's
//! writer runs every request waiting at that moment in one transaction and answers them after
//! the single commit, so concurrent requests share one fsync. On SQLite the writer is a thread
//! with its own plain connection (rusqlite), so a statement costs a function call, not a hop to
//! sqlx's connection thread. API keys of write requests are remembered once found live; the
//! commit re-checks them, so revocation still applies to the next write.
//!
//! Concurrency: SQLite writes go through a pool of one connection and `BEGIN IMMEDIATE`, so
//! writers queue in-process instead of failing with `SQLITE_BUSY`; readers use their own pool.
//! On PostgreSQL, idempotency races resolve with `ON CONFLICT DO NOTHING` and posterior updates
//! are single atomic upserts, so several instances can share one database.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::keys::{self, Scopes};
use crate::policy::ArmCounts;

mod migrations;

pub use migrations::SCHEMA_VERSION;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
enum Backend {
    /// `write` (one connection) serves migrations and key writes; turns, feedback and decisions
    /// go through the writer thread's own connection to the file at `hot.path`
    /// (`writer/sqlite.rs`).
    Sqlite {
        write: SqlitePool,
        read: SqlitePool,
        /// Plain connections for the policy's per-request counter read (`arm_counts`).
        hot: Arc<HotReaders>,
    },
    Postgres(PgPool),
}

/// Expands `$body` once per backend with `$pool` bound to that backend's pool (the writer pool
/// for SQLite unless `read` is given).
macro_rules! on_backend {
    ($store:expr, read $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { read: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
    ($store:expr, write $pool:ident => $body:expr) => {
        match &$store.backend {
            Backend::Sqlite { write: $pool, .. } => $body,
            Backend::Postgres($pool) => $body,
        }
    };
}

/// Expands `$body` once per backend (a `&Backend`) inside a write transaction bound to `$tx`;
/// commits when the body finishes, rolls back when it returns early (`?` or `return`).
macro_rules! in_write_tx {
    ($backend:expr, $tx:ident => $body:block) => {
        match $backend {
            Backend::Sqlite { write, .. } => {
                let mut $tx = write.begin_with("BEGIN IMMEDIATE").await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            Backend::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

pub(crate) use in_write_tx;

/// What can go wrong in the store. The API maps each to a status code.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A referenced row does not exist (`field` names the request field that referenced it).
    #[error("{what} {id} not found")]
    NotFound {
        what: &'static str,
        id: i64,
        field: &'static str,
    },
    /// The request is well-formed but contradicts stored state.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// A unique fact already holds (an idempotency key reused with another request, a decision
    /// already used by a turn).
    #[error("{message}")]
    Conflict {
        field: &'static str,
        message: String,
    },
    /// The database location could not be understood.
    #[error("{0}")]
    Location(String),
    /// The database's schema is newer than this program.
    #[error(
        "database schema version {found} is newer than this aligndata supports ({supported}); upgrade aligndata"
    )]
    SchemaTooNew { found: i64, supported: i64 },
    /// The database failed.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Internal: an idempotent insert lost a race to a concurrent twin; retried, never returned.
    #[error("a concurrent request with the same idempotency key won; retry")]
    LostRace,
    /// A read on one of the store's own SQLite connections failed (see `HotReaders`).
    #[error("database error: {0}")]
    Sqlite(String),
    /// The API key the write came with was revoked (found in the write's own transaction);
    /// nothing was stored.
    #[error("invalid or revoked API key")]
    KeyRevoked,
    /// The transaction of a group commit failed, so no request in it was stored; retry.
    #[error("the write was not committed: {0}")]
    Batch(String),
    /// A stored JSON column did not parse (the database was edited by hand?).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where the data lives, parsed from `--db`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file (created when missing).
    Sqlite(PathBuf),
    /// A PostgreSQL URL (`postgres://user:pass@host:port/db?...`).
    Postgres(String),
}

impl FromStr for Location {
    type Err = StoreError;

    /// `sqlite:PATH`, `sqlite://PATH`, `postgres://…`, `postgresql://…`, or a bare file path.
    fn from_str(s: &str) -> Result<Location> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Location::Postgres(s.to_string()));
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .unwrap_or(s);
        if path.is_empty() || path.starts_with(':') || path.contains("://") {
            return Err(StoreError::Location(format!(
                "cannot use `{s}` as a database: give sqlite:PATH (a file) or postgres://USER@HOST/DB"
            )));
        }
        Ok(Location::Sqlite(PathBuf::from(path)))
    }
}

/// Pool sizes and timeouts.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// PostgreSQL connections (SQLite: reader connections; there is always one writer).
    pub max_connections: u32,
    /// How long a request may wait for a connection.
    pub acquire_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// The feedback service's database. Cheap to clone (pools and the writer are shared).
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Turns, feedback and decisions go through the group commit (see `writer.rs`).
    writer: Writer,
    /// Live keys seen by [`Store::authenticate_for_write`].
    keys: Arc<KeyCache>,
}

/// API keys found live, by hash, so that a write request skips the key lookup. Sound only
/// because the group commit checks every write's key again inside the transaction that stores
/// it (see `writer.rs`): a key revoked since it was cached (by this process or any other) gets
/// its next write refused, and is forgotten here. Bounded: cleared when full.
#[derive(Default)]
struct KeyCache {
    live: Mutex<HashMap<String, ApiKeyInfo>>,
}

impl KeyCache {
    /// Most keys remembered.
    const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ApiKeyInfo>> {
        // A poisoned lock only means a panic elsewhere mid-insert; the map is still usable.
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, hash: &str) -> Option<ApiKeyInfo> {
        self.lock().get(hash).cloned()
    }

    fn insert(&self, hash: String, key: ApiKeyInfo) {
        let mut live = self.lock();
        if live.len() >= Self::MAX {
            live.clear();
        }
        live.insert(hash, key);
    }

    fn forget(&self, id: i64) {
        self.lock().retain(|_, key| key.id != id);
    }
}

/// A turn to record. The user message is already scrubbed; `cell` is the client's explicit cell
/// (if any) and `labelled_cell` what the labeller said, used when neither the client nor a
/// decision gives one.
#[derive(Debug, Clone, Serialize)]
pub struct NewTurn {
    pub conversation_id: String,
    pub user_message: String,
    pub agent_response: String,
    pub policy_version: Option<String>,
    pub cell: Option<String>,
    pub labelled_cell: String,
    pub decision_id: Option<i64>,
    pub candidates: Vec<String>,
    pub client_ts: Option<String>,
    pub idempotency_key: Option<String>,
    pub key_id: Option<i64>,
}

/// A stored turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Turn {
    pub id: i64,
    pub conversation_id: String,
    pub user_message: String,
    pub agent_response: String,
    pub policy_version: Option<String>,
    pub cell: String,
    pub arm: Option<String>,
    pub propensity: Option<f64>,
    pub decision_id: Option<i64>,
    pub candidates: Vec<String>,
    pub client_ts: Option<String>,
    pub server_ts: i64,
}

/// The kinds of feedback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedbackKind {
    Thumb,
    Rating,
    Comment,
    Correction,
    Pairwise,
}

impl FeedbackKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FeedbackKind::Thumb => "thumb",
            FeedbackKind::Rating => "rating",
            FeedbackKind::Comment => "comment",
            FeedbackKind::Correction => "correction",
            FeedbackKind::Pairwise => "pairwise",
        }
    }

    pub fn parse(s: &str) -> Option<FeedbackKind> {
        [
            Self::Thumb,
            Self::Rating,
            Self::Comment,
            Self::Correction,
            Self::Pairwise,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Feedback to record, already validated for its kind. `value`: thumb 1/0, rating 1–5, pairwise
/// the chosen candidate index; `rejected`: pairwise's rejected index; `text`: comment or
/// correction (scrubbed); `reward`: what this does to the turn's arm posterior.
#[derive(Debug, Clone, Serialize)]
pub struct NewFeedback {
    pub turn_id: i64,
    pub kind: FeedbackKind,
    pub value: Option<f64>,
    pub rejected: Option<i64>,
    pub text: Option<String>,
    pub reward: Option<bool>,
    pub idempotency_key: Option<String>,
    pub key_id: Option<i64>,
}

/// A stored feedback event, with its turn's cell and arm.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Feedback {
    pub id: i64,
    pub turn_id: i64,
    pub kind: FeedbackKind,
    pub value: Option<f64>,
    pub rejected: Option<i64>,
    pub text: Option<String>,
    pub reward: Option<bool>,
    pub server_ts: i64,
    pub cell: String,
    pub arm: Option<String>,
}

/// What a write returned, and whether it was a replay of an earlier request with the same
/// idempotency key (nothing new was stored).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Receipt<T> {
    pub value: T,
    pub replayed: bool,
}

/// A policy decision to log.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub cell: String,
    pub arm: String,
    pub propensity: f64,
    pub probabilities: Vec<(String, f64)>,
    pub policy_version: String,
    pub key_id: Option<i64>,
}

/// An API key as stored (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyInfo {
    pub id: i64,
    #[serde(serialize_with = "ser_scopes")]
    pub scopes: Scopes,
    pub label: String,
    pub created_ts: i64,
    pub revoked_ts: Option<i64>,
}

fn ser_scopes<S: serde::Serializer>(scopes: &Scopes, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(scopes.iter().map(|x| x.as_str()))
}

/// Posterior counters of one arm in one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArmStats {
    pub arm: String,
    pub successes: i64,
    pub failures: i64,
    /// Turns recorded with this arm in this cell.
    pub turns: i64,
}

/// Reward statistics of one cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CellStats {
    pub cell: String,
    pub arms: Vec<ArmStats>,
}

/// Row counts, for tests and `/readyz`-style checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub turns: i64,
    pub feedback: i64,
    pub decisions: i64,
    pub api_keys: i64,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stable hash of what a request asked for, to tell a retry from a different request that
/// reuses an idempotency key.
fn request_hash<T: Serialize>(value: &T) -> String {
    let text = serde_json::to_string(value).unwrap_or_default();
    keys::hash(&text)
}

macro_rules! turn_from_row {
    ($row:expr) => {{
        let row = &$row;
        let candidates: String = row.try_get("candidates")?;
        Turn {
            id: row.try_get("id")?,
            conversation_id: row.try_get("conversation_id")?,
            user_message: row.try_get("user_message")?,
            agent_response: row.try_get("agent_response")?,
            policy_version: row.try_get("policy_version")?,
            cell: row.try_get("cell")?,
            arm: row.try_get("arm")?,
            propensity: row.try_get("propensity")?,
            decision_id: row.try_get("decision_id")?,
            candidates: serde_json::from_str(&candidates)
                .map_err(|e| StoreError::Corrupt(format!("turns.candidates: {e}")))?,
            client_ts: row.try_get("client_ts")?,
            server_ts: row.try_get("server_ts")?,
        }
    }};
}

macro_rules! feedback_from_row {
    ($row:expr) => {{
        let row = &$row;
        let kind: String = row.try_get("kind")?;
        let reward: Option<i64> = row.try_get("reward")?;
        Feedback {
            id: row.try_get("id")?,
            turn_id: row.try_get("turn_id")?,
            kind: FeedbackKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("feedback.kind `{kind}`")))?,
            value: row.try_get("value")?,
            rejected: row.try_get("rejected")?,
            text: row.try_get("text")?,
            reward: reward.map(|r| r != 0),
            server_ts: row.try_get("server_ts")?,
            cell: row.try_get("cell")?,
            arm: row.try_get("arm")?,
        }
    }};
}

macro_rules! key_from_row {
    ($row:expr) => {{
        let row = &$row;
        let scopes: String = row.try_get("scopes")?;
        ApiKeyInfo {
            id: row.try_get("id")?,
            scopes: Scopes::parse(&scopes)
                .map_err(|e| StoreError::Corrupt(format!("api_keys.scopes: {e}")))?,
            label: row.try_get("label")?,
            created_ts: row.try_get("created_ts")?,
            revoked_ts: row.try_get("revoked_ts")?,
        }
    }};
}

/// SQLite connections (rusqlite) for the one read every `POST /v1/policy/choose` makes, run
/// right on the request's task.
///
/// Why not the sqlx read pool: there every statement is a round trip to the connection's own
/// thread (a channel send, a wake-up, a reply), which cost more than the read: an indexed
/// lookup of a few rows that, in WAL mode, never waits for the writer (a reader sees the last
/// commit and takes no lock the writer holds), so it takes microseconds and does not block
/// the runtime for longer than parsing the request does. Connections are opened read-only on
/// first use and kept (a few) for the next requests.
struct HotReaders {
    /// The database file.
    path: PathBuf,
    idle: Mutex<Vec<rusqlite::Connection>>,
}

impl HotReaders {
    /// Most idle connections kept.
    const KEEP: usize = 4;

    fn arm_counts(&self, cell: &str) -> rusqlite::Result<Vec<(String, i64, i64)>> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match taken {
            Some(conn) => conn,
            None => {
                let conn = rusqlite::Connection::open_with_flags(
                    &self.path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )?;
                // WAL readers wait only in rare cases (recovery, a WAL reset); keep the request's
                // task from being held long if one happens (the request fails with 500, retried).
                conn.busy_timeout(Duration::from_secs(1))?;
                conn
            }
        };
        let rows = conn
            .prepare_cached("SELECT arm, successes, failures FROM arm_stats WHERE cell = $1")?
            .query_map([cell], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < Self::KEEP {
            idle.push(conn);
        }
        Ok(rows)
    }
}

// After the row macros, which it uses.
mod writer;

use writer::{WriteOp, Writer, Written};

const FEEDBACK_BY_ID: &str = "SELECT f.id, f.turn_id, f.kind, f.value, f.rejected, f.text, f.reward, f.server_ts, \
     t.cell, t.arm FROM feedback f JOIN turns t ON t.id = f.turn_id WHERE f.id = $1";

impl Store {
    /// Opens (creating when missing) the database and brings its schema up to date.
    /// Must be called inside a tokio runtime: it starts the store's writer task there.
    pub async fn open(location: &Location, options: &StoreOptions) -> Result<Store> {
        let backend = match location {
            Location::Sqlite(path) => {
                if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        StoreError::Location(format!("cannot create {}: {e}", parent.display()))
                    })?;
                }
                let connect = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Full)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10));
                // The writer first: it creates the file and switches it to WAL.
                let write = SqlitePoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect.clone())
                    .await?;
                let read = SqlitePoolOptions::new()
                    .max_connections(options.max_connections.clamp(1, 64))
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Backend::Sqlite {
                    write,
                    read,
                    hot: Arc::new(HotReaders {
                        path: path.clone(),
                        idle: Mutex::new(Vec::new()),
                    }),
                }
            }
            Location::Postgres(url) => {
                let connect = PgConnectOptions::from_str(url).map_err(|e| {
                    StoreError::Location(format!("cannot parse the PostgreSQL URL: {e}"))
                })?;
                let pool = PgPoolOptions::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.acquire_timeout)
                    .connect_with(connect)
                    .await?;
                Backend::Postgres(pool)
            }
        };
        migrations::migrate(&backend).await?;
        let keys = Arc::new(KeyCache::default());
        // After the migrations: the SQLite writer prepares statements on the tables.
        // PostgreSQL: up to 4 concurrent write batches, leaving most connections to reads.
        let writer = Writer::spawn(
            &backend,
            (options.max_connections / 4).clamp(1, 4) as usize,
            keys.clone(),
        )?;
        Ok(Store {
            backend,
            writer,
            keys,
        })
    }

    /// Which database this is.
    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite { .. } => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Closes the pools (waits for connections in use to come back).
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// One round trip to the database (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on_backend!(self, read pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// The schema version the database is at.
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> = on_backend!(self, read pool => {
            sqlx::query_scalar("SELECT MAX(version) FROM schema_version").fetch_one(pool).await?
        });
        Ok(v.unwrap_or(0))
    }

    // ---- turns ----------------------------------------------------------------------------------

    /// Records a turn. With an idempotency key already used by the same request, returns the
    /// stored turn (`replayed`); used by a different request, a conflict.
    pub async fn record_turn(&self, new: &NewTurn) -> Result<Receipt<Turn>> {
        retry_lost_race(|| self.record_turn_once(new)).await
    }

    async fn record_turn_once(&self, new: &NewTurn) -> Result<Receipt<Turn>> {
        match self.writer.write(WriteOp::Turn(new.clone())).await? {
            Written::Turn(receipt) => Ok(receipt),
            _ => Err(wrong_reply()),
        }
    }

    /// A turn by id.
    pub async fn turn(&self, id: i64) -> Result<Option<Turn>> {
        on_backend!(self, read pool => {
            let row = sqlx::query(TURN_COLUMNS_SQL_BY_ID).bind(id).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(turn_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    // ---- feedback -------------------------------------------------------------------------------

    /// Records feedback on a turn and, when it carries a reward, updates the turn's (cell, arm)
    /// posterior in the same transaction. Unknown turn: `NotFound`; pairwise indexes outside the
    /// turn's candidates: `Invalid`; idempotency as in [`Store::record_turn`].
    pub async fn record_feedback(&self, new: &NewFeedback) -> Result<Receipt<Feedback>> {
        retry_lost_race(|| self.record_feedback_once(new)).await
    }

    async fn record_feedback_once(&self, new: &NewFeedback) -> Result<Receipt<Feedback>> {
        match self.writer.write(WriteOp::Feedback(new.clone())).await? {
            Written::Feedback(receipt) => Ok(receipt),
            _ => Err(wrong_reply()),
        }
    }

    /// A feedback event by id.
    pub async fn feedback(&self, id: i64) -> Result<Option<Feedback>> {
        on_backend!(self, read pool => {
            let row = sqlx::query(FEEDBACK_BY_ID).bind(id).fetch_optional(pool).await?;
            match row {
                Some(row) => Ok(Some(feedback_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// The most recent feedback, newest first: at most `limit`, only ids below `before` when
    /// given, only of `kind` when given.
    pub async fn recent_feedback(
        &self,
        limit: i64,
        kind: Option<FeedbackKind>,
        before: Option<i64>,
    ) -> Result<Vec<Feedback>> {
        let kind = kind.map(FeedbackKind::as_str);
        on_backend!(self, read pool => {
            let rows = sqlx::query(
                "SELECT f.id, f.turn_id, f.kind, f.value, f.rejected, f.text, f.reward, f.server_ts, t.cell, t.arm \
                 FROM feedback f JOIN turns t ON t.id = f.turn_id \
                 WHERE ($1 IS NULL OR f.kind = $1) AND ($2 IS NULL OR f.id < $2) \
                 ORDER BY f.id DESC LIMIT $3",
            )
            .bind(kind)
            .bind(before)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(feedback_from_row!(row));
            }
            Ok(out)
        })
    }

    // ---- policy ---------------------------------------------------------------------------------

    /// Posterior counters of `arms` in `cell`, in the order given (zero for arms never seen).
    pub async fn arm_counts(&self, cell: &str, arms: &[String]) -> Result<Vec<ArmCounts>> {
        let rows: Vec<(String, i64, i64)> = if let Backend::Sqlite { hot, .. } = &self.backend {
            hot.arm_counts(cell)
                .map_err(|e| StoreError::Sqlite(format!("reading arm_stats: {e}")))?
        } else {
            on_backend!(self, read pool => {
                let rows = sqlx::query("SELECT arm, successes, failures FROM arm_stats WHERE cell = $1")
                    .bind(cell)
                    .fetch_all(pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    out.push((row.try_get("arm")?, row.try_get("successes")?, row.try_get("failures")?));
                }
                out
            })
        };
        Ok(arms
            .iter()
            .map(|arm| {
                let (s, f) = rows
                    .iter()
                    .find(|(a, _, _)| a == arm)
                    .map(|(_, s, f)| (*s, *f))
                    .unwrap_or((0, 0));
                ArmCounts {
                    arm: arm.clone(),
                    successes: s,
                    failures: f,
                }
            })
            .collect())
    }

    /// Logs a policy decision; its id goes back to the agent, which quotes it on the turn.
    pub async fn record_decision(&self, new: &NewDecision) -> Result<i64> {
        match self.writer.write(WriteOp::Decision(new.clone())).await? {
            Written::Decision(id) => Ok(id),
            _ => Err(wrong_reply()),
        }
    }

    /// Per-cell, per-arm reward counters, sorted by cell and arm.
    pub async fn cell_stats(&self) -> Result<Vec<CellStats>> {
        let rows: Vec<(String, ArmStats)> = on_backend!(self, read pool => {
            let rows = sqlx::query(
                "SELECT cell, arm, successes, failures, turns FROM arm_stats ORDER BY cell, arm",
            )
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push((
                    row.try_get("cell")?,
                    ArmStats {
                        arm: row.try_get("arm")?,
                        successes: row.try_get("successes")?,
                        failures: row.try_get("failures")?,
                        turns: row.try_get("turns")?,
                    },
                ));
            }
            out
        });
        let mut cells: Vec<CellStats> = Vec::new();
        for (cell, arm) in rows {
            match cells.last_mut() {
                Some(last) if last.cell == cell => last.arms.push(arm),
                _ => cells.push(CellStats {
                    cell,
                    arms: vec![arm],
                }),
            }
        }
        Ok(cells)
    }

    // ---- API keys -------------------------------------------------------------------------------

    /// Creates a key; returns its record and the key itself, which is not stored and cannot be
    /// shown again.
    pub async fn create_key(&self, scopes: &Scopes, label: &str) -> Result<(ApiKeyInfo, String)> {
        let key = keys::generate();
        let now = now_ms();
        let id: i64 = on_backend!(self, write pool => {
            sqlx::query_scalar(
                "INSERT INTO api_keys (hash, scopes, label, created_ts) VALUES ($1, $2, $3, $4) RETURNING id",
            )
            .bind(keys::hash(&key))
            .bind(scopes.to_string())
            .bind(label)
            .bind(now)
            .fetch_one(pool)
            .await?
        });
        Ok((
            ApiKeyInfo {
                id,
                scopes: scopes.clone(),
                label: label.to_string(),
                created_ts: now,
                revoked_ts: None,
            },
            key,
        ))
    }

    /// Revokes a key; false when there is no such key or it was already revoked. Applies to the
    /// next write committed, here or in any process sharing the database.
    pub async fn revoke_key(&self, id: i64) -> Result<bool> {
        self.keys.forget(id);
        let done = on_backend!(self, write pool => {
            sqlx::query("UPDATE api_keys SET revoked_ts = $1 WHERE id = $2 AND revoked_ts IS NULL")
                .bind(now_ms())
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    /// Every key, revoked ones included, by id.
    pub async fn list_keys(&self) -> Result<Vec<ApiKeyInfo>> {
        on_backend!(self, read pool => {
            let rows = sqlx::query("SELECT id, scopes, label, created_ts, revoked_ts FROM api_keys ORDER BY id")
                .fetch_all(pool)
                .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(key_from_row!(row));
            }
            Ok(out)
        })
    }

    /// The live (not revoked) key with this plaintext, if any: one lookup in the database.
    pub async fn authenticate(&self, key: &str) -> Result<Option<ApiKeyInfo>> {
        let hash = keys::hash(key);
        self.authenticate_hash(&hash).await
    }

    /// Like [`Store::authenticate`], for a request whose only effects are writes through the
    /// group commit (turns, feedback, decisions, with the key's id as their `key_id`): a key
    /// found live before is taken from memory, with no database round trip. Revocation still
    /// applies at once: the commit checks each write's key in its own transaction and refuses a
    /// revoked one ([`StoreError::KeyRevoked`]). An unknown or revoked key is looked up every
    /// time (only live keys are remembered).
    pub async fn authenticate_for_write(&self, key: &str) -> Result<Option<ApiKeyInfo>> {
        let hash = keys::hash(key);
        if let Some(found) = self.keys.get(&hash) {
            return Ok(Some(found));
        }
        let found = self.authenticate_hash(&hash).await?;
        if let Some(found) = &found {
            self.keys.insert(hash, found.clone());
        }
        Ok(found)
    }

    async fn authenticate_hash(&self, hash: &str) -> Result<Option<ApiKeyInfo>> {
        on_backend!(self, read pool => {
            let row = sqlx::query(
                "SELECT id, scopes, label, created_ts, revoked_ts FROM api_keys WHERE hash = $1 AND revoked_ts IS NULL",
            )
            .bind(hash)
            .fetch_optional(pool)
            .await?;
            match row {
                Some(row) => Ok(Some(key_from_row!(row))),
                None => Ok(None),
            }
        })
    }

    /// Row counts of the main tables.
    pub async fn counts(&self) -> Result<Counts> {
        on_backend!(self, read pool => {
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM turns) AS turns, (SELECT COUNT(*) FROM feedback) AS feedback, \
                 (SELECT COUNT(*) FROM decisions) AS decisions, (SELECT COUNT(*) FROM api_keys) AS api_keys",
            )
            .fetch_one(pool)
            .await?;
            Ok(Counts {
                turns: row.try_get("turns")?,
                feedback: row.try_get("feedback")?,
                decisions: row.try_get("decisions")?,
                api_keys: row.try_get("api_keys")?,
            })
        })
    }
}

/// A stored row found by its idempotency key (see [`Store::rows_by_key_prefix`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyedRow {
    pub idempotency_key: String,
    pub id: i64,
    /// The turn a feedback row is about; `None` for turns.
    pub turn_id: Option<i64>,
}

impl Store {
    /// Every turn and every feedback row whose idempotency key starts with `prefix`, by id: how
    /// the load test (`aligndata serve bench`) checks what clients were told against what is
    /// stored.
    pub async fn rows_by_key_prefix(&self, prefix: &str) -> Result<(Vec<KeyedRow>, Vec<KeyedRow>)> {
        // LIKE with the wildcards escaped; SQLite's LIKE ignores ASCII case, so filter exactly after.
        let pattern = format!(
            "{}%",
            prefix
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let (mut turns, mut feedback) = on_backend!(self, read pool => {
            let rows = sqlx::query(
                "SELECT id, idempotency_key FROM turns WHERE idempotency_key LIKE $1 ESCAPE '\\' ORDER BY id",
            )
            .bind(&pattern)
            .fetch_all(pool)
            .await?;
            let mut turns = Vec::with_capacity(rows.len());
            for row in rows {
                turns.push(KeyedRow { idempotency_key: row.try_get("idempotency_key")?, id: row.try_get("id")?, turn_id: None });
            }
            let rows = sqlx::query(
                "SELECT id, idempotency_key, turn_id FROM feedback WHERE idempotency_key LIKE $1 ESCAPE '\\' ORDER BY id",
            )
            .bind(&pattern)
            .fetch_all(pool)
            .await?;
            let mut feedback = Vec::with_capacity(rows.len());
            for row in rows {
                feedback.push(KeyedRow {
                    idempotency_key: row.try_get("idempotency_key")?,
                    id: row.try_get("id")?,
                    turn_id: Some(row.try_get("turn_id")?),
                });
            }
            (turns, feedback)
        });
        turns.retain(|r| r.idempotency_key.starts_with(prefix));
        feedback.retain(|r| r.idempotency_key.starts_with(prefix));
        Ok((turns, feedback))
    }
}

const TURN_COLUMNS_SQL_BY_ID: &str = "SELECT id, conversation_id, user_message, agent_response, policy_version, cell, arm, \
     propensity, decision_id, candidates, client_ts, server_ts, request_hash FROM turns WHERE id = $1";

/// The writer answered a request with another request's kind of result (a bug, never seen).
fn wrong_reply() -> StoreError {
    StoreError::Batch("the writer answered with the wrong kind of result".into())
}

fn idempotency_conflict() -> StoreError {
    StoreError::Conflict {
        field: "idempotency_key",
        message: "this idempotency key was already used with a different request".into(),
    }
}

/// Runs an idempotent write again when it lost a race to a concurrent request with the same
/// idempotency key; the second run sees the winner's row and answers with the replay.
async fn retry_lost_race<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    for _ in 0..3 {
        match attempt().await {
            Err(StoreError::LostRace) => continue,
            other => return other,
        }
    }
    attempt().await
}

// Reads for export, off-policy evaluation and planning (after the macros, which it uses).
mod feedback_log;
pub use feedback_log::{CellFeedback, LoggedDecision, TurnFeedback};
