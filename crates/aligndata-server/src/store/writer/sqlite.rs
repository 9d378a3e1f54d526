//! The SQLite group commit: one thread owns a plain (rusqlite) connection and runs each batch
//! synchronously on it.
//!
//! Why not sqlx here: sqlx runs every SQLite connection on a worker thread of its own, so each
//! statement is a cross-thread round trip (a channel send, a wake-up, a reply); under the load
//! test those hops, not SQLite, were most of the server's CPU, and they serialised the batch
//! behind the scheduler. Here the writer thread waits at the queue, takes everything queued (up
//! to [`MAX_BATCH`]), and runs the whole batch in-thread with cached prepared statements:
//! `BEGIN IMMEDIATE`, a few microseconds per statement, `COMMIT` (the WAL fsync,
//! `synchronous=FULL`), and only then answers each request. Durability and idempotency are
//! exactly those of the PostgreSQL writer next door, with the same SQL text: its `$n`
//! placeholders are SQLite named parameters, numbered in order of first appearance, so binding
//! by position matches (a test checks every statement).
//!
//! The connection is opened with the settings the sqlx pools use (WAL, `synchronous=FULL`,
//! foreign keys, a 10 s busy timeout), after the migrations ran. Other writers of the same file
//! (`aligndata keys` in another process, the store's own key writes) take turns with it through
//! SQLite's lock: `BEGIN IMMEDIATE` waits for them, up to the busy timeout.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;

use super::{
    DECISION_FOR_TURN, Deltas, FEEDBACK_LOOKUP, INSERT_DECISION, INSERT_FEEDBACK, INSERT_TURN, Job,
    LIVE_KEY_SQLITE, MAX_BATCH, TURN_BY_KEY, UPSERT_ARM_STATS, WriteOp, Written, answer,
    decision_probabilities, key_id,
};
use crate::store::{
    Feedback, FeedbackKind, KeyCache, NewDecision, NewFeedback, NewTurn, Receipt, Result,
    StoreError, Turn, idempotency_conflict, now_ms, request_hash,
};

/// Opens the writer's connection to the SQLite file at `path` (which the sqlx pools created
/// and migrated).
pub(in crate::store) fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Starts the writer thread; it ends when every sender of `queue` is gone.
pub(in crate::store) fn spawn(
    mut conn: Connection,
    mut queue: mpsc::Receiver<Job>,
    keys: Arc<KeyCache>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("aligndata-sqlite-writer".into())
        .spawn(move || {
            let mut batch = Vec::with_capacity(MAX_BATCH);
            while queue.blocking_recv_many(&mut batch, MAX_BATCH) > 0 {
                let outcome = run_batch(&mut conn, &batch, &keys).map_err(|e| e.to_string());
                answer(&mut batch, outcome);
            }
        })?;
    Ok(())
}

/// Runs the batch in one `BEGIN IMMEDIATE` transaction and commits it. `Err`: a database error;
/// the transaction is rolled back (dropped) and no request in it was stored. `Ok`: one result
/// per job, as in the PostgreSQL writer's `run_batch` (no savepoints: a request's own failures
/// are found by its reads or by `ON CONFLICT DO NOTHING`, before it writes anything).
fn run_batch(
    conn: &mut Connection,
    batch: &[Job],
    keys: &KeyCache,
) -> rusqlite::Result<Vec<Result<Written>>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Revocation: every key the batch's requests came with must still be live now, inside the
    // transaction that stores them (so a `keys revoke` committed before is always seen).
    let mut dead: Vec<i64> = Vec::new();
    let mut checked: Vec<i64> = Vec::new();
    for id in batch.iter().filter_map(|job| key_id(&job.op)) {
        if checked.contains(&id) || dead.contains(&id) {
            continue;
        }
        let live = tx
            .prepare_cached(LIVE_KEY_SQLITE)?
            .query_row(params![id], |_| Ok(()))
            .optional()?
            .is_some();
        if live {
            checked.push(id);
        } else {
            dead.push(id);
        }
    }
    let mut results = Vec::with_capacity(batch.len());
    let mut deltas = Deltas::new();
    for job in batch {
        let result = match &job.op {
            op if key_id(op).is_some_and(|id| dead.contains(&id)) => Err(StoreError::KeyRevoked),
            WriteOp::Turn(new) => record_turn(&tx, new, &mut deltas)?.map(Written::Turn),
            WriteOp::Feedback(new) => {
                record_feedback(&tx, new, &mut deltas)?.map(Written::Feedback)
            }
            WriteOp::Decision(new) => record_decision(&tx, new)?.map(Written::Decision),
        };
        results.push(result);
    }
    for ((cell, arm), [successes, failures, turns]) in &deltas {
        tx.prepare_cached(UPSERT_ARM_STATS)?
            .execute(params![cell, arm, successes, failures, turns])?;
    }
    tx.commit()?;
    for id in dead {
        keys.forget(id);
    }
    Ok(results)
}

/// A turn row of [`TURN_BY_KEY`]'s columns: the turn (candidates not yet parsed), its stored
/// candidates text and request hash.
fn turn_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Turn, String, String)> {
    Ok((
        Turn {
            id: r.get(0)?,
            conversation_id: r.get(1)?,
            user_message: r.get(2)?,
            agent_response: r.get(3)?,
            policy_version: r.get(4)?,
            cell: r.get(5)?,
            arm: r.get(6)?,
            propensity: r.get(7)?,
            decision_id: r.get(8)?,
            candidates: Vec::new(),
            client_ts: r.get(10)?,
            server_ts: r.get(11)?,
        },
        r.get(9)?,
        r.get(12)?,
    ))
}

fn record_turn(
    tx: &Connection,
    new: &NewTurn,
    deltas: &mut Deltas,
) -> rusqlite::Result<Result<Receipt<Turn>>> {
    let hash = request_hash(new);
    if let Some(key) = &new.idempotency_key {
        let existing = tx
            .prepare_cached(TURN_BY_KEY)?
            .query_row(params![key], turn_row)
            .optional()?;
        if let Some((mut turn, candidates, stored_hash)) = existing {
            if stored_hash != hash {
                return Ok(Err(idempotency_conflict()));
            }
            match serde_json::from_str(&candidates) {
                Ok(c) => turn.candidates = c,
                Err(e) => return Ok(Err(StoreError::Corrupt(format!("turns.candidates: {e}")))),
            }
            return Ok(Ok(Receipt {
                value: turn,
                replayed: true,
            }));
        }
    }
    let (cell, arm, propensity, policy_version) = match new.decision_id {
        Some(decision_id) => {
            let row = tx
                .prepare_cached(DECISION_FOR_TURN)?
                .query_row(params![decision_id], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, f64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, Option<i64>>(4)?,
                    ))
                })
                .optional()?;
            let Some((cell, arm, propensity, version, used_by)) = row else {
                return Ok(Err(StoreError::NotFound {
                    what: "decision",
                    id: decision_id,
                    field: "decision_id",
                }));
            };
            if let Some(explicit) = &new.cell
                && *explicit != cell
            {
                return Ok(Err(StoreError::Invalid {
                    field: "cell",
                    message: format!(
                        "cell `{explicit}` differs from decision {decision_id}'s cell `{cell}`"
                    ),
                }));
            }
            if let Some(turn_id) = used_by {
                return Ok(Err(StoreError::Conflict {
                    field: "decision_id",
                    message: format!("decision {decision_id} is already used by turn {turn_id}"),
                }));
            }
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
    let candidates = serde_json::to_string(&new.candidates).unwrap_or_else(|_| "[]".into());
    let now = now_ms();
    let id: Option<i64> = tx
        .prepare_cached(INSERT_TURN)?
        .query_row(
            params![
                new.conversation_id,
                new.user_message,
                new.agent_response,
                policy_version,
                cell,
                arm,
                propensity,
                new.decision_id,
                candidates,
                new.client_ts,
                now,
                new.idempotency_key,
                hash,
                new.key_id,
            ],
            |r| r.get(0),
        )
        .optional()?;
    // No row: another process committed this idempotency key or decision first (it cannot be
    // this batch: its rows are visible to the lookups above); the retry answers it.
    let Some(id) = id else {
        return Ok(Err(StoreError::LostRace));
    };
    if let Some(arm) = &arm {
        deltas.entry((cell.clone(), arm.clone())).or_default()[2] += 1;
    }
    Ok(Ok(Receipt {
        value: super::stored_turn(new, id, policy_version, cell, arm, propensity, now),
        replayed: false,
    }))
}

/// [`FEEDBACK_LOOKUP`]'s row: the turn asked for, and an event already stored under the key.
struct Lookup {
    cell: Option<String>,
    arm: Option<String>,
    candidates: Option<String>,
    stored: Option<(Feedback, String, String)>,
}

fn lookup_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Lookup> {
    let stored = match r.get::<_, Option<i64>>(3)? {
        Some(id) => {
            let reward: Option<i64> = r.get(9)?;
            Some((
                Feedback {
                    id,
                    turn_id: r.get(4)?,
                    kind: FeedbackKind::Thumb,
                    value: r.get(6)?,
                    rejected: r.get(7)?,
                    text: r.get(8)?,
                    reward: reward.map(|r| r != 0),
                    server_ts: r.get(10)?,
                    cell: r.get(12)?,
                    arm: r.get(13)?,
                },
                r.get::<_, String>(5)?,
                r.get::<_, String>(11)?,
            ))
        }
        None => None,
    };
    Ok(Lookup {
        cell: r.get(0)?,
        arm: r.get(1)?,
        candidates: r.get(2)?,
        stored,
    })
}

fn record_feedback(
    tx: &Connection,
    new: &NewFeedback,
    deltas: &mut Deltas,
) -> rusqlite::Result<Result<Receipt<Feedback>>> {
    let hash = request_hash(new);
    let found = tx
        .prepare_cached(FEEDBACK_LOOKUP)?
        .query_row(params![new.turn_id, new.idempotency_key], lookup_row)?;
    if let Some((mut value, kind, stored_hash)) = found.stored {
        if stored_hash != hash {
            return Ok(Err(idempotency_conflict()));
        }
        let Some(kind) = FeedbackKind::parse(&kind) else {
            return Ok(Err(StoreError::Corrupt(format!("feedback.kind `{kind}`"))));
        };
        value.kind = kind;
        return Ok(Ok(Receipt {
            value,
            replayed: true,
        }));
    }
    let Some(cell) = found.cell else {
        return Ok(Err(StoreError::NotFound {
            what: "turn",
            id: new.turn_id,
            field: "turn_id",
        }));
    };
    if new.kind == FeedbackKind::Pairwise {
        let candidates = found.candidates.unwrap_or_default();
        let n = match serde_json::from_str::<Vec<serde_json::Value>>(&candidates) {
            Ok(c) => c.len() as i64,
            Err(e) => return Ok(Err(StoreError::Corrupt(format!("turns.candidates: {e}")))),
        };
        let chosen = new.value.unwrap_or(-1.0) as i64;
        for (field, index) in [("chosen", chosen), ("rejected", new.rejected.unwrap_or(-1))] {
            if index < 0 || index >= n {
                return Ok(Err(StoreError::Invalid {
                    field,
                    message: format!(
                        "{field} must index turn {}'s candidates (0..{n}), got {index}",
                        new.turn_id
                    ),
                }));
            }
        }
    }
    let now = now_ms();
    let id: Option<i64> = tx
        .prepare_cached(INSERT_FEEDBACK)?
        .query_row(
            params![
                new.turn_id,
                new.kind.as_str(),
                new.value,
                new.rejected,
                new.text,
                new.reward.map(i64::from),
                new.idempotency_key,
                hash,
                new.key_id,
                now,
            ],
            |r| r.get(0),
        )
        .optional()?;
    let Some(id) = id else {
        return Ok(Err(StoreError::LostRace));
    };
    let arm = found.arm;
    if let (Some(reward), Some(arm)) = (new.reward, &arm) {
        deltas.entry((cell.clone(), arm.clone())).or_default()[if reward { 0 } else { 1 }] += 1;
    }
    Ok(Ok(Receipt {
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
    }))
}

fn record_decision(tx: &Connection, new: &NewDecision) -> rusqlite::Result<Result<i64>> {
    let id: i64 = tx.prepare_cached(INSERT_DECISION)?.query_row(
        params![
            new.cell,
            new.arm,
            new.propensity,
            decision_probabilities(new),
            new.policy_version,
            new.key_id,
            now_ms(),
        ],
        |r| r.get(0),
    )?;
    Ok(Ok(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Binding by position is right only if each statement's `$n` first appear in order.
    #[test]
    fn placeholders_bind_by_position() {
        let dir = tempfile::tempdir().unwrap();
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        conn.execute_batch(include_str!("../migrations/sqlite_0001.sql"))
            .unwrap();
        for sql in [
            TURN_BY_KEY,
            DECISION_FOR_TURN,
            INSERT_TURN,
            FEEDBACK_LOOKUP,
            INSERT_FEEDBACK,
            INSERT_DECISION,
            UPSERT_ARM_STATS,
            LIVE_KEY_SQLITE,
        ] {
            let stmt = conn.prepare(sql).unwrap();
            for i in 1..=stmt.parameter_count() {
                assert_eq!(
                    stmt.parameter_name(i),
                    Some(format!("${i}").as_str()),
                    "{sql}"
                );
            }
        }
    }

    #[test]
    fn the_writer_connection_is_durable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        Connection::open(&path).unwrap();
        let conn = open(&path).unwrap();
        let get = |name: &str| -> String {
            conn.pragma_query_value(None, name, |r| {
                r.get::<_, rusqlite::types::Value>(0)
                    .map(|v| format!("{v:?}"))
            })
            .unwrap()
        };
        assert_eq!(get("journal_mode"), "Text(\"wal\")");
        assert_eq!(get("synchronous"), "Integer(2)", "FULL");
        assert_eq!(get("foreign_keys"), "Integer(1)");
    }
}
