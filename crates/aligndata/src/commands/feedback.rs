//! `aligndata feedback export|offpolicy`: the feedback service's log, offline.
//!
//! Glue only: pages turns and decisions out of the store (`aligndata-server`), hands turns to
//! the feedback stage (`aligndata_stages::feedback`: rows, PII, dedup, files) and decisions to
//! `aligndata_server::offpolicy` (IPS/SNIPS, Vowpal Wabbit lines).

use anyhow::{Context, Result, bail};
use serde_json::json;

use aligndata_server::offpolicy::{TargetPolicy, evaluate, vw_actions, vw_line};
use aligndata_server::store::{FeedbackKind, LoggedDecision, TurnFeedback};
use aligndata_server::{Location, Store, StoreOptions};
use aligndata_stages::dedup::{DedupConfig, NearConfig};
use aligndata_stages::feedback::{
    FeedbackEvent, FeedbackExportConfig, FeedbackExporter, FeedbackTurn,
};

use crate::cli::{FeedbackCommand, FeedbackExportArgs, FeedbackOffpolicyArgs};
use crate::ui::{Outcome, Ui};

/// Rows read per database round trip.
const PAGE: i64 = 2000;

pub fn run(cmd: FeedbackCommand, ui: &Ui) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cmd {
            FeedbackCommand::Export(args) => export(args, ui).await,
            FeedbackCommand::Offpolicy(args) => offpolicy(args, ui).await,
        }
    })
}

/// Opens the service's database (read-only use; migrations run as for `serve`).
pub async fn open(db: &str) -> Result<Store> {
    let location: Location = db.parse()?;
    Store::open(
        &location,
        &StoreOptions {
            max_connections: 2,
            ..StoreOptions::default()
        },
    )
    .await
    .with_context(|| format!("opening the database {}", super::serve::describe(&location)))
}

/// Every logged decision, by turn id.
pub async fn decision_log(store: &Store) -> Result<Vec<LoggedDecision>> {
    let mut log = Vec::new();
    let mut after = 0;
    loop {
        let page = store.logged_decisions(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.turn_id;
        log.extend(page);
    }
    Ok(log)
}

/// A stored turn as the feedback stage's input; events whose stored values do not fit their
/// kind (a database edited by hand) are left out and counted.
fn to_stage(tf: TurnFeedback, unreadable: &mut u64) -> FeedbackTurn {
    let events = tf
        .feedback
        .into_iter()
        .filter_map(|f| {
            let event = match f.kind {
                FeedbackKind::Thumb => f.value.map(|v| FeedbackEvent::Thumb(v >= 1.0)),
                FeedbackKind::Rating => f
                    .value
                    .filter(|v| (1.0..=5.0).contains(v))
                    .map(|v| FeedbackEvent::Rating(v as u8)),
                FeedbackKind::Comment => f.text.map(FeedbackEvent::Comment),
                FeedbackKind::Correction => f.text.map(FeedbackEvent::Correction),
                FeedbackKind::Pairwise => match (f.value, f.rejected) {
                    (Some(c), Some(r)) if c >= 0.0 && r >= 0 => Some(FeedbackEvent::Pairwise {
                        chosen: c as usize,
                        rejected: r as usize,
                    }),
                    _ => None,
                },
            };
            if event.is_none() {
                *unreadable += 1;
            }
            event.map(|e| (f.id, e))
        })
        .collect();
    FeedbackTurn {
        turn_id: tf.turn.id,
        conversation_id: tf.turn.conversation_id,
        user_message: tf.turn.user_message,
        agent_response: tf.turn.agent_response,
        cell: tf.turn.cell,
        arm: tf.turn.arm,
        policy_version: tf.turn.policy_version,
        candidates: tf.turn.candidates,
        events,
    }
}

async fn export(args: FeedbackExportArgs, ui: &Ui) -> Result<Outcome> {
    if !(args.near_threshold > 0.0 && args.near_threshold <= 1.0) {
        bail!(
            "--near-threshold is a Jaccard in (0, 1], got {}",
            args.near_threshold
        );
    }
    let store = open(&args.db.db).await?;
    let mut human = Vec::new();
    let mut out_json = json!({ "ok": true });
    let mut produced = false;
    if let Some(out) = &args.out {
        let config = FeedbackExportConfig {
            system_prompt: args.system_prompt.clone(),
            scrub_pii: !args.keep_pii,
            dedup: DedupConfig {
                near: Some(NearConfig {
                    threshold: args.near_threshold,
                    ..NearConfig::default()
                }),
                ..DedupConfig::default()
            },
            dataset: true,
        };
        let mut exporter = FeedbackExporter::new(config)?;
        let bar = ui.bar(None, "turns");
        let mut unreadable = 0u64;
        let mut after = 0;
        loop {
            let page = store.turns_with_feedback(after, PAGE).await?;
            let Some(last) = page.last() else { break };
            after = last.turn.id;
            for tf in page {
                exporter.add(&to_stage(tf, &mut unreadable));
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let s = exporter.finish(out)?;
        let pii = s.pii.describe();
        human.push(format!(
            "feedback export: {} turns with feedback, {} events ({})",
            s.turns,
            s.events.values().sum::<u64>(),
            s.events
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for (name, c, detail) in [
            (
                "unpaired",
                &s.unpaired,
                format!(
                    "{} desirable, {} undesirable",
                    s.unpaired_desirable, s.unpaired_undesirable
                ),
            ),
            (
                "preference",
                &s.preference,
                format!(
                    "{} from pairwise choices, {} from corrections",
                    s.preference_from_pairwise, s.preference_from_corrections
                ),
            ),
            ("sft", &s.sft, "from corrections".to_string()),
        ] {
            human.push(format!(
                "  {name:<10} {:>6} rows ({detail}); dropped {} exact and {} near duplicates",
                c.written, c.exact_duplicates, c.near_duplicates
            ));
        }
        human.push(format!(
            "  PII: {} replacements in {} texts{}",
            s.pii.total(),
            s.texts_with_pii,
            if pii.is_empty() {
                String::new()
            } else {
                format!(" ({pii})")
            }
        ));
        if !s.unused_events.is_empty() {
            human.push(format!(
                "  events that made no row (quarantine.jsonl): {}",
                s.unused_events
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        if unreadable > 0 {
            human.push(format!(
                "  {unreadable} stored events had values that do not fit their kind and were skipped"
            ));
        }
        human.push(format!(
            "  written to {} (dataset of {} records in {}/dataset)",
            out.display(),
            s.dataset_records,
            out.display()
        ));
        produced |= s.unpaired.written + s.preference.written + s.sft.written > 0;
        out_json["out"] = json!(out);
        out_json["export"] = serde_json::to_value(&s)?;
        out_json["unreadable_events"] = json!(unreadable);
    }
    if let Some(vw) = &args.vw {
        let log = decision_log(&store).await?;
        let actions = vw_actions(&log);
        let mut bytes = Vec::new();
        let mut lines = 0u64;
        for d in &log {
            if let Some(line) = vw_line(d, &actions) {
                bytes.extend_from_slice(line.as_bytes());
                bytes.push(b'\n');
                lines += 1;
            }
        }
        aligndata_dataset::write_atomic(vw, &bytes)
            .with_context(|| format!("writing {}", vw.display()))?;
        let mapping: Vec<String> = actions.iter().map(|(a, i)| format!("{i}={a}")).collect();
        human.push(format!(
            "vw: {lines} labelled decisions of {} logged written to {} (vw --cb {}; actions {})",
            log.len(),
            vw.display(),
            actions.len(),
            if mapping.is_empty() {
                "none".to_string()
            } else {
                mapping.join(", ")
            }
        ));
        produced |= lines > 0;
        out_json["vw"] =
            json!({ "file": vw, "lines": lines, "decisions": log.len(), "actions": actions });
    }
    store.close().await;
    let mut outcome = Outcome::new(human, out_json);
    outcome.produced = produced;
    Ok(outcome)
}

async fn offpolicy(args: FeedbackOffpolicyArgs, _ui: &Ui) -> Result<Outcome> {
    let policies: Vec<TargetPolicy> = args
        .policies
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|e: String| anyhow::anyhow!("--policy {p}: {e}"))
        })
        .collect::<Result<_>>()?;
    let store = open(&args.db.db).await?;
    let log = decision_log(&store).await?;
    store.close().await;
    let reports: Vec<_> = policies.iter().map(|p| evaluate(&log, p)).collect();
    let first = reports.first();
    let outcomes = first.map_or(0, |r| r.outcomes);
    let fmt = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
    let mut human = vec![format!(
        "off-policy: {} logged decisions, {outcomes} with an observed reward; logging policy's mean reward {}",
        log.len(),
        fmt(first.and_then(|r| r.logged_value))
    )];
    if let Some(r) = first {
        for (arm, a) in &r.arms {
            human.push(format!(
                "  logged arm {arm:<16} {:>6} outcomes, mean reward {:.3}",
                a.outcomes, a.mean_reward
            ));
        }
    }
    human.push(format!(
        "  {:<20} {:>7} {:>7} {:>12}",
        "policy", "IPS", "SNIPS", "effective n"
    ));
    for r in &reports {
        human.push(format!(
            "  {:<20} {:>7} {:>7} {:>12}",
            r.policy,
            fmt(r.ips),
            fmt(r.snips),
            r.effective_n.map_or("-".to_string(), |n| format!("{n:.1}"))
        ));
    }
    if outcomes == 0 {
        human.push(
            "  nothing to estimate from: no turn that used a /v1/policy/choose decision has a thumb, rating or correction yet"
                .to_string(),
        );
    }
    let mut outcome = Outcome::new(
        human,
        json!({ "ok": true, "decisions": log.len(), "outcomes": outcomes, "estimates": reports }),
    );
    outcome.produced = outcomes > 0;
    Ok(outcome)
}
