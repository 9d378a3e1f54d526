//! Group commit: one writer per store turns concurrent writes into one transaction.
//!
//! Why: a durable commit costs an fsync (SQLite `synchronous=FULL` fsyncs the WAL on every
//! commit; PostgreSQL flushes its WAL). One transaction per request caps a store at roughly one
//! request per fsync, however many requests wait. Here requests queue on a channel; the writer
//! takes everything queued (up to [`MAX_BATCH`]), runs the requests one after the other in one
//! transaction, commits once, and only then answers each request. So an acknowledged write
//! is still committed to disk before its reply (it survives kill -9 and, with `FULL`, power
//! loss), while a thousand waiting requests share one fsync. Nothing waits on a timer: the
//! batch is whatever arrived while the previous commit was flushing, so a lone request is
//! committed at once.
//!
//! A request that fails (unknown turn, idempotency conflict, a constraint) gets its own error and
//! leaves nothing behind; the others in the batch commit (see `run_batch` for how). A failed
//! commit fails every request of the batch: none was acknowledged, clients retry with their
//! idempotency keys.
//!
//! Revocation: a request that carries an API key id (every API request does) is stored only if
//! that key is still live inside the batch's own transaction; a revoked key's requests get
//! [`StoreError::KeyRevoked`] and nothing is stored. That is what lets the API skip the key
//! lookup for writes (`Store::authenticate_for_write`): revocation still takes effect for the
//! very next commit, whichever process revoked the key.
//!
//! Two writers, one SQL text ([`TURN_BY_KEY`] and the other constants below):
//! - SQLite (`writer/sqlite.rs`): a thread of its own with a plain rusqlite connection, so a
//!   statement is a function call. Why: sqlx runs each SQLite connection on its own thread and
//!   every statement is a cross-thread round trip (two context switches); profiling the load test
//!   showed those switches, not SQLite, dominating the server's CPU.
//! - PostgreSQL (below, sqlx): a batch is bound by network round trips on its one connection, so
//!   a few batches run at once on their own connections; the hot path (feedback) does one read
//!   and one insert, and the batch updates each posterior counter once, last, in a fixed order.

use std::sync::Arc;

use sqlx::Row;
use tokio::sync::{mpsc, oneshot};

use super::{
    Backend, Feedback, FeedbackKind, KeyCache, NewDecision, NewFeedback, NewTurn, Receipt, Result,
    StoreError, Turn, idempotency_conflict, now_ms, request_hash,
};

mod sqlite;

/// Most requests committed in one transaction: bounds the wait of the batch's first request.
pub(super) const MAX_BATCH: usize = 512;
/// Requests that may wait for the writer before senders wait too (backpressure).
const QUEUE: usize = 8 * MAX_BATCH;

/// A write the group commit runs.
pub(super) enum WriteOp {
    Turn(NewTurn),
    Feedback(NewFeedback),
    Decision(NewDecision),
}

/// What a [`WriteOp`] returned once its batch committed.
pub(super) enum Written {
    Turn(Receipt<Turn>),
    Feedback(Receipt<Feedback>),
    Decision(i64),
}

struct Job {
    op: WriteOp,
    reply: oneshot::Sender<Result<Written>>,
}

/// The API key a write came with, if any (direct library calls may have none).
fn key_id(op: &WriteOp) -> Option<i64> {
    match op {
        WriteOp::Turn(new) => new.key_id,
        WriteOp::Feedback(new) => new.key_id,
        WriteOp::Decision(new) => new.key_id,
    }
}

/// The handle requests send their writes to; cheap to clone.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the store's writers; they end when every handle is gone. SQLite: one thread with
    /// its own connection to the (already migrated) file. PostgreSQL: `writers` tasks on the
    /// current tokio runtime taking turns at the queue; a batch is bound by round trips on its
    /// one connection, so a few batches run at once on their own connections; their counter
    /// updates come last and in one order, so they wait on each other only briefly and never
    /// deadlock.
    pub(super) fn spawn(backend: &Backend, writers: usize, keys: Arc<KeyCache>) -> Result<Writer> {
        let (jobs, queue) = mpsc::channel(QUEUE);
        match backend {
            Backend::Sqlite { hot, .. } => {
                let path = &hot.path;
                let conn = sqlite::open(path).map_err(|e| {
                    StoreError::Location(format!("cannot open {} for writing: {e}", path.display()))
                })?;
                sqlite::spawn(conn, queue, keys).map_err(|e| {
                    StoreError::Batch(format!("cannot start the SQLite writer thread: {e}"))
                })?;
            }
            Backend::Postgres(pool) => {
                let queue = Arc::new(tokio::sync::Mutex::new(queue));
                for _ in 0..writers.max(1) {
                    tokio::spawn(run_postgres(pool.clone(), queue.clone(), keys.clone()));
                }
            }
        }
        Ok(Writer { jobs })
    }

    /// Queues `op` and waits until its batch has committed (or failed).
    pub(super) async fn write(&self, op: WriteOp) -> Result<Written> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { op, reply })
            .await
            .map_err(|_| StoreError::Batch("the store's writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Batch("the store's writer stopped mid-batch".into()))?
    }
}

/// Answers every job of a batch that was committed (`Ok`, one result per job) or rolled back
/// (`Err`, why), and empties `batch`.
fn answer(batch: &mut Vec<Job>, outcome: std::result::Result<Vec<Result<Written>>, String>) {
    match outcome {
        Ok(results) => {
            for (job, result) in batch.drain(..).zip(results) {
                // The requester may have gone (client disconnected); its write stands.
                let _ = job.reply.send(result);
            }
        }
        Err(message) => {
            eprintln!(
                "aligndata serve: a write batch of {} failed and was rolled back: {message}",
                batch.len()
            );
            for job in batch.drain(..) {
                let _ = job.reply.send(Err(StoreError::Batch(message.clone())));
            }
        }
    }
}

async fn run_postgres(
    pool: sqlx::PgPool,
    queue: Arc<tokio::sync::Mutex<mpsc::Receiver<Job>>>,
    keys: Arc<KeyCache>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        // One writer at a time waits at the queue; the others are committing.
        let taken = queue.lock().await.recv_many(&mut batch, MAX_BATCH).await;
        if taken == 0 {
            return;
        }
        let outcome = match pool.begin().await {
            Ok(mut tx) => match pg_ops::run_batch(&mut tx, &batch, &keys).await {
                Ok(results) => tx
                    .commit()
                    .await
                    .map(|()| results)
                    .map_err(StoreError::from),
                Err(err) => Err(err),
            },
            Err(err) => Err(err.into()),
        };
        answer(&mut batch, outcome.map_err(|e| e.to_string()));
    }
}

/// Posterior counter changes of one batch, per (cell, arm): successes, failures, turns. A
/// `BTreeMap` so that rows are always updated in the same order (no deadlock between instances
/// sharing a PostgreSQL database).
type Deltas = std::collections::BTreeMap<(String, String), [i64; 3]>;

// ---- the SQL both writers run (`$n` placeholders, first appearing in order) ---------------------

/// A turn stored under an idempotency key (columns in [`sqlite::turn_row`]'s order).
const TURN_BY_KEY: &str = "SELECT id, conversation_id, user_message, agent_response, policy_version, cell, arm, \
     propensity, decision_id, candidates, client_ts, server_ts, request_hash \
     FROM turns WHERE idempotency_key = $1";
/// One round trip: the decision and the turn already using it, if any.
const DECISION_FOR_TURN: &str = "SELECT d.cell, d.arm, d.propensity, d.policy_version, \
     (SELECT t.id FROM turns t WHERE t.decision_id = d.id) AS used_by \
     FROM decisions d WHERE d.id = $1";
/// DO NOTHING without a target covers both unique columns (idempotency key, decision), so no
/// statement fails and the batch's transaction stays usable; no row back means another
/// transaction won.
const INSERT_TURN: &str = "INSERT INTO turns (conversation_id, user_message, agent_response, policy_version, cell, arm, \
     propensity, decision_id, candidates, client_ts, server_ts, idempotency_key, request_hash, key_id) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
     ON CONFLICT DO NOTHING RETURNING id";
/// One round trip for both lookups of the hot path: the turn asked for, and an event already
/// stored under this idempotency key, with its turn.
const FEEDBACK_LOOKUP: &str = "SELECT t.cell, t.arm, t.candidates, f.id AS f_id, f.turn_id AS f_turn_id, \
     f.kind AS f_kind, f.value AS f_value, f.rejected AS f_rejected, f.text AS f_text, \
     f.reward AS f_reward, f.server_ts AS f_server_ts, f.request_hash AS f_hash, \
     ft.cell AS f_cell, ft.arm AS f_arm \
     FROM (SELECT 1 AS one) AS one \
     LEFT JOIN turns t ON t.id = $1 \
     LEFT JOIN feedback f ON f.idempotency_key = $2 \
     LEFT JOIN turns ft ON ft.id = f.turn_id";
const INSERT_FEEDBACK: &str = "INSERT INTO feedback (turn_id, kind, value, rejected, text, reward, idempotency_key, \
     request_hash, key_id, server_ts) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (idempotency_key) DO NOTHING RETURNING id";
const INSERT_DECISION: &str = "INSERT INTO decisions (cell, arm, propensity, probabilities, policy_version, key_id, server_ts) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id";
const UPSERT_ARM_STATS: &str = "INSERT INTO arm_stats (cell, arm, successes, failures, turns) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (cell, arm) DO UPDATE SET successes = arm_stats.successes + $3, \
     failures = arm_stats.failures + $4, turns = arm_stats.turns + $5";
/// SQLite: whether one key is live (a row back) — a function call per distinct key per batch.
const LIVE_KEY_SQLITE: &str = "SELECT 1 FROM api_keys WHERE id = $1 AND revoked_ts IS NULL";
/// PostgreSQL: which of the batch's keys are live, in one round trip.
const LIVE_KEYS_POSTGRES: &str =
    "SELECT id FROM api_keys WHERE id = ANY($1) AND revoked_ts IS NULL";

/// A decision's probabilities as stored: a JSON object from arm to probability.
fn decision_probabilities(new: &NewDecision) -> String {
    let probabilities: serde_json::Map<String, serde_json::Value> = new
        .probabilities
        .iter()
        .map(|(a, p)| (a.clone(), serde_json::json!(p)))
        .collect();
    serde_json::Value::Object(probabilities).to_string()
}

/// The PostgreSQL writer's requests (sqlx, one round trip per statement).
mod pg_ops {
    use super::*;

    type Conn = sqlx::PgConnection;

    /// Runs every job of the batch, then applies the batch's counter changes (one
    /// update per (cell, arm) instead of one per request, and the hot counter rows are
    /// locked only from there to the commit). `Err`: the transaction is unusable (the
    /// caller rolls it back and fails the batch); `Ok`: one result per job.
    ///
    /// Why no savepoint per request: a request's own failures (unknown turn, conflict,
    /// invalid index, a lost race) are found by its reads or by `ON CONFLICT DO
    /// NOTHING`, before it has written anything or failed a statement, so they need no
    /// undo; any database error aborts the whole batch, unacknowledged, and clients retry
    /// it. A savepoint pair would add two round trips to every request.
    pub(super) async fn run_batch(
        tx: &mut Conn,
        batch: &[Job],
        keys: &KeyCache,
    ) -> Result<Vec<Result<Written>>> {
        // Revocation, in the transaction that stores the batch: one round trip for all its keys.
        let mut ids: Vec<i64> = batch.iter().filter_map(|job| key_id(&job.op)).collect();
        ids.sort_unstable();
        ids.dedup();
        let live: Vec<i64> = if ids.is_empty() {
            Vec::new()
        } else {
            sqlx::query_scalar(LIVE_KEYS_POSTGRES)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
        };
        let mut results = Vec::with_capacity(batch.len());
        let mut deltas = Deltas::new();
        for job in batch {
            let result = match &job.op {
                op if key_id(op).is_some_and(|id| !live.contains(&id)) => {
                    Err(StoreError::KeyRevoked)
                }
                WriteOp::Turn(new) => record_turn(tx, new, &mut deltas).await.map(Written::Turn),
                WriteOp::Feedback(new) => record_feedback(tx, new, &mut deltas)
                    .await
                    .map(Written::Feedback),
                WriteOp::Decision(new) => record_decision(tx, new).await.map(Written::Decision),
            };
            if let Err(StoreError::Db(_)) = result {
                return result.map(|_| Vec::new());
            }
            results.push(result);
        }
        for ((cell, arm), [successes, failures, turns]) in &deltas {
            sqlx::query(UPSERT_ARM_STATS)
                .bind(cell)
                .bind(arm)
                .bind(successes)
                .bind(failures)
                .bind(turns)
                .execute(&mut *tx)
                .await?;
        }
        for id in ids.iter().filter(|id| !live.contains(id)) {
            keys.forget(*id);
        }
        Ok(results)
    }

    async fn record_turn(
        tx: &mut Conn,
        new: &NewTurn,
        deltas: &mut Deltas,
    ) -> Result<Receipt<Turn>> {
        let hash = request_hash(new);
        let candidates = serde_json::to_string(&new.candidates).unwrap_or_else(|_| "[]".into());
        let now = now_ms();
        if let Some(key) = &new.idempotency_key {
            let existing = sqlx::query(TURN_BY_KEY)
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(row) = existing {
                let stored_hash: String = row.try_get("request_hash")?;
                if stored_hash != hash {
                    return Err(idempotency_conflict());
                }
                return Ok(Receipt {
                    value: turn_from_row!(row),
                    replayed: true,
                });
            }
        }
        let (cell, arm, propensity, policy_version) = match new.decision_id {
            Some(decision_id) => {
                let row = sqlx::query(DECISION_FOR_TURN)
                    .bind(decision_id)
                    .fetch_optional(&mut *tx)
                    .await?
                    .ok_or(StoreError::NotFound {
                        what: "decision",
                        id: decision_id,
                        field: "decision_id",
                    })?;
                let cell: String = row.try_get("cell")?;
                if let Some(explicit) = &new.cell
                    && *explicit != cell
                {
                    return Err(StoreError::Invalid {
                        field: "cell",
                        message: format!(
                            "cell `{explicit}` differs from decision {decision_id}'s cell `{cell}`"
                        ),
                    });
                }
                let used: Option<i64> = row.try_get("used_by")?;
                if let Some(turn_id) = used {
                    return Err(StoreError::Conflict {
                        field: "decision_id",
                        message: format!(
                            "decision {decision_id} is already used by turn {turn_id}"
                        ),
                    });
                }
                let arm: String = row.try_get("arm")?;
                let propensity: f64 = row.try_get("propensity")?;
                let version: String = row.try_get("policy_version")?;
                (
                    cell,
                    Some(arm),
                    Some(propensity),
                    new.policy_version.clone().or(Some(version)),
                )
            }
            None => (
                new.cell
                    .clone()
                    .unwrap_or_else(|| new.labelled_cell.clone()),
                None,
                None,
                new.policy_version.clone(),
            ),
        };
        let id: Option<i64> = sqlx::query_scalar(INSERT_TURN)
            .bind(&new.conversation_id)
            .bind(&new.user_message)
            .bind(&new.agent_response)
            .bind(&policy_version)
            .bind(&cell)
            .bind(&arm)
            .bind(propensity)
            .bind(new.decision_id)
            .bind(&candidates)
            .bind(&new.client_ts)
            .bind(now)
            .bind(&new.idempotency_key)
            .bind(&hash)
            .bind(new.key_id)
            .fetch_optional(&mut *tx)
            .await?;
        // No row: a concurrent request (another instance) committed this idempotency key or this
        // decision first; the retry finds it and answers with the replay or the conflict.
        let Some(id) = id else {
            return Err(StoreError::LostRace);
        };
        if let Some(arm) = &arm {
            deltas.entry((cell.clone(), arm.clone())).or_default()[2] += 1;
        }
        Ok(Receipt {
            value: stored_turn(new, id, policy_version, cell, arm, propensity, now),
            replayed: false,
        })
    }

    async fn record_feedback(
        tx: &mut Conn,
        new: &NewFeedback,
        deltas: &mut Deltas,
    ) -> Result<Receipt<Feedback>> {
        let hash = request_hash(new);
        let now = now_ms();
        let turn = sqlx::query(FEEDBACK_LOOKUP)
            .bind(new.turn_id)
            .bind(&new.idempotency_key)
            .fetch_one(&mut *tx)
            .await?;
        let stored: Option<i64> = turn.try_get("f_id")?;
        if let Some(id) = stored {
            let stored_hash: String = turn.try_get("f_hash")?;
            if stored_hash != hash {
                return Err(idempotency_conflict());
            }
            let kind: String = turn.try_get("f_kind")?;
            let reward: Option<i64> = turn.try_get("f_reward")?;
            let value = Feedback {
                id,
                turn_id: turn.try_get("f_turn_id")?,
                kind: FeedbackKind::parse(&kind)
                    .ok_or_else(|| StoreError::Corrupt(format!("feedback.kind `{kind}`")))?,
                value: turn.try_get("f_value")?,
                rejected: turn.try_get("f_rejected")?,
                text: turn.try_get("f_text")?,
                reward: reward.map(|r| r != 0),
                server_ts: turn.try_get("f_server_ts")?,
                cell: turn.try_get("f_cell")?,
                arm: turn.try_get("f_arm")?,
            };
            return Ok(Receipt {
                value,
                replayed: true,
            });
        }
        let cell: Option<String> = turn.try_get("cell")?;
        let cell = cell.ok_or(StoreError::NotFound {
            what: "turn",
            id: new.turn_id,
            field: "turn_id",
        })?;
        let arm: Option<String> = turn.try_get("arm")?;
        if new.kind == FeedbackKind::Pairwise {
            let candidates: String = turn.try_get("candidates")?;
            let n = serde_json::from_str::<Vec<serde_json::Value>>(&candidates)
                .map_err(|e| StoreError::Corrupt(format!("turns.candidates: {e}")))?
                .len() as i64;
            let chosen = new.value.unwrap_or(-1.0) as i64;
            for (field, index) in [("chosen", chosen), ("rejected", new.rejected.unwrap_or(-1))] {
                if index < 0 || index >= n {
                    return Err(StoreError::Invalid {
                        field,
                        message: format!(
                            "{field} must index turn {}'s candidates (0..{n}), got {index}",
                            new.turn_id
                        ),
                    });
                }
            }
        }
        let id: Option<i64> = sqlx::query_scalar(INSERT_FEEDBACK)
            .bind(new.turn_id)
            .bind(new.kind.as_str())
            .bind(new.value)
            .bind(new.rejected)
            .bind(&new.text)
            .bind(new.reward.map(i64::from))
            .bind(&new.idempotency_key)
            .bind(&hash)
            .bind(new.key_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        // No row: a concurrent request with the same key committed first (another instance);
        // the retry finds it and replies with the replay.
        let Some(id) = id else {
            return Err(StoreError::LostRace);
        };
        if let (Some(reward), Some(arm)) = (new.reward, &arm) {
            deltas.entry((cell.clone(), arm.clone())).or_default()[if reward { 0 } else { 1 }] += 1;
        }
        Ok(Receipt {
            value: Feedback {
                id,
                turn_id: new.turn_id,
                kind: new.kind,
                value: new.value,
                rejected: new.rejected,
                text: new.text.clone(),
                reward: new.reward,
                server_ts: now,
                cell,
                arm,
            },
            replayed: false,
        })
    }

    async fn record_decision(tx: &mut Conn, new: &NewDecision) -> Result<i64> {
        let id: i64 = sqlx::query_scalar(INSERT_DECISION)
            .bind(&new.cell)
            .bind(&new.arm)
            .bind(new.propensity)
            .bind(decision_probabilities(new))
            .bind(&new.policy_version)
            .bind(new.key_id)
            .bind(now_ms())
            .fetch_one(&mut *tx)
            .await?;
        Ok(id)
    }
}

/// The turn a request stored, as its receipt returns it (both writers).
pub(super) fn stored_turn(
    new: &NewTurn,
    id: i64,
    policy_version: Option<String>,
    cell: String,
    arm: Option<String>,
    propensity: Option<f64>,
    now: i64,
) -> Turn {
    Turn {
        id,
        conversation_id: new.conversation_id.clone(),
        user_message: new.user_message.clone(),
        agent_response: new.agent_response.clone(),
        policy_version,
        cell,
        arm,
        propensity,
        decision_id: new.decision_id,
        candidates: new.candidates.clone(),
        client_ts: new.client_ts.clone(),
        server_ts: now,
    }
}
