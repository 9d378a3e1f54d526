//! Reads for the offline side of the loop: feedback export, off-policy evaluation, the Vowpal
//! Wabbit log and the next round's plan. Read-only, paged by id (keyset pagination), so a log
//! of millions of turns is read in bounded memory and never holds a long transaction.

use serde::Serialize;
use sqlx::Row;

use super::{Backend, Feedback, FeedbackKind, Result, Store, StoreError, Turn};

/// A turn with every feedback event recorded on it, oldest event first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnFeedback {
    pub turn: Turn,
    pub feedback: Vec<Feedback>,
}

/// One policy decision that a turn used, with the rewards its feedback carried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoggedDecision {
    pub turn_id: i64,
    pub decision_id: i64,
    pub cell: String,
    /// The arm the logging policy chose.
    pub arm: String,
    /// The probability it chose it with.
    pub propensity: f64,
    /// Every arm's probability at decision time (sorted by arm name).
    pub probabilities: Vec<(String, f64)>,
    pub policy_version: Option<String>,
    /// Reward-bearing feedback events on the turn that were successes.
    pub successes: i64,
    /// Reward-bearing feedback events on the turn (thumbs, ratings, corrections).
    pub rewarded: i64,
}

impl LoggedDecision {
    /// The turn's observed reward in [0, 1]: the share of its reward-bearing feedback events
    /// that were successes; `None` when nobody said anything that carries a reward.
    pub fn reward(&self) -> Option<f64> {
        (self.rewarded > 0).then(|| self.successes as f64 / self.rewarded as f64)
    }
}

/// What feedback says about one cell: every turn recorded in it, bandit or not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellFeedback {
    pub cell: String,
    pub turns: i64,
    pub successes: i64,
    pub failures: i64,
}

const TURNS_WITH_FEEDBACK: &str = "SELECT t.id, t.conversation_id, t.user_message, t.agent_response, \
     t.policy_version, t.cell, t.arm, t.propensity, t.decision_id, t.candidates, t.client_ts, t.server_ts \
     FROM turns t WHERE t.id > $1 AND EXISTS (SELECT 1 FROM feedback f WHERE f.turn_id = t.id) \
     ORDER BY t.id LIMIT $2";

impl Store {
    /// Turns with at least one feedback event and an id above `after`, by id, at most `limit`,
    /// each with its feedback. Page on with the last turn's id.
    pub async fn turns_with_feedback(&self, after: i64, limit: i64) -> Result<Vec<TurnFeedback>> {
        let (turns, events) = on_backend!(self, read pool => {
            let rows = sqlx::query(TURNS_WITH_FEEDBACK)
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut turns = Vec::with_capacity(rows.len());
            for row in rows {
                turns.push(turn_from_row!(row));
            }
            let mut events = Vec::new();
            if let (Some(first), Some(last)) = (turns.first(), turns.last()) {
                let rows = sqlx::query(
                    "SELECT f.id, f.turn_id, f.kind, f.value, f.rejected, f.text, f.reward, f.server_ts, \
                     t.cell, t.arm FROM feedback f JOIN turns t ON t.id = f.turn_id \
                     WHERE f.turn_id >= $1 AND f.turn_id <= $2 ORDER BY f.id",
                )
                .bind(first.id)
                .bind(last.id)
                .fetch_all(pool)
                .await?;
                for row in rows {
                    events.push(feedback_from_row!(row));
                }
            }
            (turns, events)
        });
        let mut out: Vec<TurnFeedback> = turns
            .into_iter()
            .map(|turn| TurnFeedback {
                turn,
                feedback: Vec::new(),
            })
            .collect();
        for event in events {
            if let Ok(i) = out.binary_search_by_key(&event.turn_id, |t| t.turn.id) {
                out[i].feedback.push(event);
            }
        }
        Ok(out)
    }

    /// Turns that quoted a policy decision, id above `after`, by id, at most `limit`: the
    /// logged decisions with their propensities and observed rewards.
    pub async fn logged_decisions(&self, after: i64, limit: i64) -> Result<Vec<LoggedDecision>> {
        on_backend!(self, read pool => {
            let rows = sqlx::query(
                "SELECT t.id AS turn_id, d.id AS decision_id, d.cell, d.arm, d.propensity, d.probabilities, \
                 t.policy_version, \
                 COALESCE(SUM(CASE WHEN f.reward = 1 THEN 1 ELSE 0 END), 0) AS successes, \
                 COUNT(f.reward) AS rewarded \
                 FROM turns t JOIN decisions d ON d.id = t.decision_id \
                 LEFT JOIN feedback f ON f.turn_id = t.id \
                 WHERE t.id > $1 \
                 GROUP BY t.id, d.id, d.cell, d.arm, d.propensity, d.probabilities, t.policy_version \
                 ORDER BY t.id LIMIT $2",
            )
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let probabilities: String = row.try_get("probabilities")?;
                let probabilities: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&probabilities)
                        .map_err(|e| StoreError::Corrupt(format!("decisions.probabilities: {e}")))?;
                let mut probabilities: Vec<(String, f64)> = probabilities
                    .into_iter()
                    .map(|(arm, p)| (arm, p.as_f64().unwrap_or(0.0)))
                    .collect();
                probabilities.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(LoggedDecision {
                    turn_id: row.try_get("turn_id")?,
                    decision_id: row.try_get("decision_id")?,
                    cell: row.try_get("cell")?,
                    arm: row.try_get("arm")?,
                    propensity: row.try_get("propensity")?,
                    probabilities,
                    policy_version: row.try_get("policy_version")?,
                    successes: row.try_get("successes")?,
                    rewarded: row.try_get("rewarded")?,
                });
            }
            Ok(out)
        })
    }

    /// Per cell (sorted): turns recorded, and reward-bearing feedback split into successes and
    /// failures. Every turn counts, whether or not it used a policy decision.
    pub async fn cell_feedback(&self) -> Result<Vec<CellFeedback>> {
        on_backend!(self, read pool => {
            let rows = sqlx::query(
                "SELECT t.cell, COUNT(DISTINCT t.id) AS turns, \
                 COALESCE(SUM(CASE WHEN f.reward = 1 THEN 1 ELSE 0 END), 0) AS successes, \
                 COALESCE(SUM(CASE WHEN f.reward = 0 THEN 1 ELSE 0 END), 0) AS failures \
                 FROM turns t LEFT JOIN feedback f ON f.turn_id = t.id \
                 GROUP BY t.cell ORDER BY t.cell",
            )
            .fetch_all(pool)
            .await?;
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                out.push(CellFeedback {
                    cell: row.try_get("cell")?,
                    turns: row.try_get("turns")?,
                    successes: row.try_get("successes")?,
                    failures: row.try_get("failures")?,
                });
            }
            Ok(out)
        })
    }
}
