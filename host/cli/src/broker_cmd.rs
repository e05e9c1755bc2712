//! `pynq-mqtt broker` (hidden): the embedded broker of `sim` on its own, until
//! SIGINT/SIGTERM. The end-to-end tests start, kill and restart it as the second
//! real broker besides mosquitto.

use anyhow::Result;
use tokio::runtime::Runtime;
use tracing::info;

#[derive(clap::Args, Debug)]
pub struct BrokerArgs {
    /// Loopback port to listen on.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
}

pub fn run(rt: &Runtime, args: &BrokerArgs) -> Result<()> {
    let addr = crate::broker::start(args.port)?;
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
