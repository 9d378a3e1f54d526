//! `aligndata keys create|revoke|list`: API keys of the feedback service.
//!
//! A new key is printed once (in the summary; with `--json` as `key` on stdout, so
//! `aligndata keys create --scopes ingest --json | jq -r .key` works); only its SHA-256 is
//! stored, so a lost key is revoked and replaced, never recovered.

use anyhow::{Context, Result, anyhow};
use serde_json::json;

use aligndata_server::{Location, Scopes, Store, StoreOptions};

use crate::cli::KeysCommand;
use crate::ui::{Outcome, Ui};

pub fn run(cmd: KeysCommand, _ui: &Ui) -> Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        match cmd {
            KeysCommand::Create { db, scopes, label } => {
                let scopes = Scopes::parse(&scopes).map_err(|e| anyhow!("--scopes: {e}"))?;
                let store = open(&db.db).await?;
                let (info, key) = store.create_key(&scopes, &label).await?;
                store.close().await;
                Ok(Outcome::new(
                    vec![
                        format!(
                            "created key {} (scopes {}{}); it is shown once, store it now:",
                            info.id,
                            info.scopes,
                            if label.is_empty() { String::new() } else { format!(", label {label:?}") }
                        ),
                        key.clone(),
                    ],
                    json!({ "id": info.id, "key": key, "scopes": info.scopes.to_string(), "label": label }),
                ))
            }
            KeysCommand::Revoke { db, id } => {
                let store = open(&db.db).await?;
                let revoked = store.revoke_key(id).await?;
                store.close().await;
                if !revoked {
                    anyhow::bail!("no live key with id {id}\nhint: `aligndata keys list` shows the ids");
                }
                Ok(Outcome::new(vec![format!("revoked key {id}")], json!({ "id": id, "revoked": true })))
            }
            KeysCommand::List { db } => {
                let store = open(&db.db).await?;
                let keys = store.list_keys().await?;
                store.close().await;
                let mut human = vec![format!("{:>4}  {:<18} {:<8} label", "id", "scopes", "status")];
                for k in &keys {
                    let status = if k.revoked_ts.is_some() { "revoked" } else { "live" };
                    human.push(format!("{:>4}  {:<18} {:<8} {}", k.id, k.scopes.to_string(), status, k.label));
                }
                if keys.is_empty() {
                    human = vec!["no keys yet; create one with `aligndata keys create --scopes ingest,read`".into()];
                }
                Ok(Outcome::new(human, json!({ "keys": keys })))
            }
        }
    })
}

async fn open(db: &str) -> Result<Store> {
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
