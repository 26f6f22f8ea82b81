//! `summoner migrate`: applies the journal's pending migrations and exits.
//!
//! `summoner serve` does the same at start, under the same lock, so this is only needed to
//! prepare a data directory ahead of time (or to check that a database is not from a newer
//! summoner) without starting the server.

use std::process::ExitCode;

use anyhow::Context;
use summoner_server::store;

use crate::cli::MigrateArgs;
use crate::serve::load_config;

pub fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let mut config = load_config(args.config.as_deref())?;
    if let Some(dir) = args.data_dir {
        config.data_dir = dir;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let db = store::db_path(&config.data_dir);
    let applied = runtime
        .block_on(async {
            let mut conn = store::open(&config.data_dir, config.sync).await?;
            let applied = store::migrate(&mut conn).await?;
            store::close(conn).await?;
            Ok::<_, summoner_server::StoreError>(applied)
        })
        .with_context(|| format!("cannot migrate {}", db.display()))?;
    match applied {
        0 => eprintln!("summoner: {} is up to date", db.display()),
        n => eprintln!("summoner: applied {n} migration(s) to {}", db.display()),
    }
    Ok(ExitCode::SUCCESS)
}
