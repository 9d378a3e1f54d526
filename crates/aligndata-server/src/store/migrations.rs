//! Schema migrations: embedded SQL per backend, applied in order inside one transaction, recorded
//! in `schema_version`.
//!
//! Why not sqlx's migrator: the two backends need slightly different DDL (identity columns), and
//! concurrent server instances starting against one PostgreSQL must not race; a transaction-scoped
//! advisory lock (PostgreSQL) or `BEGIN IMMEDIATE` (SQLite) serialises them here in a few lines.

use sqlx::Row;

use super::{Backend, Result, StoreError, in_write_tx, now_ms};

struct Migration {
    version: i64,
    name: &'static str,
    sqlite: &'static str,
    postgres: &'static str,
}

const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "turns, feedback, decisions, api keys, arm stats",
    sqlite: include_str!("migrations/sqlite_0001.sql"),
    postgres: include_str!("migrations/postgres_0001.sql"),
}];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_version (\
     version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_ts BIGINT NOT NULL)";

/// Brings the schema up to date (before the store's writer starts).
pub(super) async fn migrate(backend: &Backend) -> Result<()> {
    let postgres = matches!(backend, Backend::Postgres(_));
    in_write_tx!(backend, tx => {
        if postgres {
            // Any constant works; this one spells "aligndata" on a phone keypad, roughly.
            sqlx::query("SELECT pg_advisory_xact_lock(254463282)").execute(&mut *tx).await?;
        }
        sqlx::query(CREATE_VERSION_TABLE).execute(&mut *tx).await?;
        let row = sqlx::query("SELECT MAX(version) AS v FROM schema_version").fetch_one(&mut *tx).await?;
        let current: Option<i64> = row.try_get("v")?;
        let current = current.unwrap_or(0);
        if current > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew { found: current, supported: SCHEMA_VERSION });
        }
        for m in MIGRATIONS.iter().filter(|m| m.version > current) {
            let sql = if postgres { m.postgres } else { m.sqlite };
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_version (version, name, applied_ts) VALUES ($1, $2, $3)")
                .bind(m.version)
                .bind(m.name)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
    });
    Ok(())
}
