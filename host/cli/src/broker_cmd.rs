//! `pynq-mqtt broker` (hidden): the embedded broker of `sim` on its own, until
//! SIGINT/SIGTERM. The end-to-end tests start, kill and restart it as the second
//! real broker besides mosquitto; `--user` with `--password-file` makes it ask for a
//! user name and password (the settings are those of `sim`'s broker otherwise).

use std::collections::HashMap;

use anyhow::{Context, Result};
use tokio::runtime::Runtime;
use tracing::info;

#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// Loopback port to listen on.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Require this user name (with --password-file).
    #[arg(long, requires = "password_file")]
    pub user: Option<String>,
    /// File whose first line is the user's password.
    #[arg(long, value_name = "FILE", requires = "user")]
    pub password_file: Option<String>,
}

pub fn run(rt: &Runtime, args: &BrokerArgs) -> Result<()> {
    let addr = match (&args.user, &args.password_file) {
        (Some(user), Some(file)) => {
            let pw = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {file}"))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned();
            crate::broker::start_with(args.port, Some(HashMap::from([(user.clone(), pw)])))?
        }
        _ => crate::broker::start(args.port)?,
    };
    info!("embedded broker listening on {addr}");
    rt.block_on(async {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        anyhow::Ok(())
    })?;
    // the broker thread has no stop; the process ends here
    Ok(())
}
