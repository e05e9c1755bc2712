//! `pynq-mqtt config`: the effective configuration, as a TOML file with the source of
//! every value (command line, environment, file and line, default) and the password
//! masked. Exits non-zero when the configuration would not start (bad value, TLS
//! file that cannot be read, bad topic names).

use anyhow::Result;

use crate::settings::{self, CommonArgs};

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// `uio` (a PYNQ board) or `sim` (the Verilated RTL).
    #[arg(long, env = "PYNQ_MQTT_BOARD")]
    pub board: Option<String>,
    /// mqtt://HOST:PORT or mqtts://HOST:PORT (default mqtt://localhost:1883).
    #[arg(long, env = "PYNQ_MQTT_BROKER")]
    pub broker: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(args: &ConfigArgs) -> Result<()> {
    let s = settings::resolve(&args.common, args.board.as_deref(), args.broker.as_deref())?;
    print!("{}", settings::render(&s));
    let mut cfg = s.bridge.clone();
    cfg.host = s.broker.host.clone();
    cfg.port = s.broker.port;
    pynq_mqtt_bridge::check(&cfg)?;
    Ok(())
}
