//! `aligndata serve`: the online feedback service (turns, feedback, the bandit policy).
//!
//! Glue only: flags become a `ServerConfig`; everything else lives in `aligndata-server`.

use anyhow::{Context, Result};
use serde_json::json;

use aligndata_server::api::{self, RateLimit, ServerConfig};
use aligndata_server::policy::ThompsonConfig;
use aligndata_server::{Location, Store, StoreOptions};

use crate::cli::{ServeArgs, ServeCommand};
use crate::ui::{Outcome, Ui};

pub fn run(args: ServeArgs, ui: &Ui) -> Result<Outcome> {
    if let Some(ServeCommand::Bench(bench)) = args.command {
        return super::serve_bench::run(bench, ui);
    }
    let location: Location = args.db.db.parse()?;
    let rate_limit = (args.rate_limit > 0.0).then(|| RateLimit {
        per_second: args.rate_limit,
        burst: args.burst.unwrap_or(args.rate_limit * 2.0).max(1.0),
    });
    let arms: Vec<String> = args
        .arms
        .iter()
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    let config = ServerConfig {
        arms: arms.clone(),
        policy_version: args.policy_version.clone(),
        thompson: ThompsonConfig {
            floor: args.exploration_floor,
            ..ThompsonConfig::default()
        },
        body_limit: args.max_body_bytes,
        rate_limit,
        ..ServerConfig::default()
    };
    let mut config = config;
    if !args.keep_pii {
        // The same scrubber as offline ingest, so stored feedback never holds what a dataset
        // would not.
        config.scrubber = std::sync::Arc::new(|text: &str| aligndata_stages::pii::scrub(text).0);
    }
    match args.labeller.trim() {
        "none" if args.taxonomy.is_some() => anyhow::bail!(
            "--taxonomy is only used by a labeller\nhint: add --labeller prototype (or a MODEL.json)"
        ),
        "none" => {}
        spec => {
            let labeller =
                super::online_labeller::TaxonomyLabeller::load(spec, args.taxonomy.as_deref(), ui)?;
            ui.note(&format!(
                "aligndata serve: labelling messages with {}",
                labeller.name
            ));
            config.labeller = std::sync::Arc::new(labeller);
        }
    }
    config.validate()?;
    let options = StoreOptions {
        max_connections: args.max_connections,
        ..StoreOptions::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let store = Store::open(&location, &options)
            .await
            .with_context(|| format!("opening the database {}", describe(&location)))?;
        let router = api::router(store.clone(), config)?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("cannot listen on {}", args.listen))?;
        let addr = listener.local_addr()?;
        ui.note(&format!(
            "aligndata serve: listening on http://{addr} ({}, arms {}); API at http://{addr}/openapi.json",
            describe(&location),
            arms.join(",")
        ));
        api::serve(listener, router, api::shutdown_signal()).await.context("serving")?;
        store.close().await;
        ui.note("aligndata serve: stopped");
        Ok(Outcome::new(
            vec![format!("served on http://{addr}")],
            json!({ "listen": addr.to_string(), "backend": store.kind(), "arms": arms }),
        ))
    })
}

/// The database for messages, without a password.
pub fn describe(location: &Location) -> String {
    match location {
        Location::Sqlite(path) => format!("sqlite {}", path.display()),
        Location::Postgres(url) => {
            // postgres://user:secret@host/db -> postgres://user@host/db
            match (url.find("://"), url.rfind('@')) {
                (Some(scheme), Some(at)) if at > scheme => {
                    let userinfo = &url[scheme + 3..at];
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{}{user}{}", &url[..scheme + 3], &url[at..])
                }
                _ => url.clone(),
            }
        }
    }
}
