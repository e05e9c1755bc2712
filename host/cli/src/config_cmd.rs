//! `pynq-mqtt config`: the effective configuration, as a TOML file with the source of
//! every value (command line, environment, file and line, default) and the password
//! masked. Exits non-zero when the configuration would not start (bad value, TLS
//! file that cannot be read, bad topic names).

use anyhow::Result;

use crate::settings::{self, BoardArgs, BrokerArgs, CommonArgs, Settings};

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub board: BoardArgs,
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

pub fn run(s: Settings) -> Result<()> {
    print!("{}", settings::render(&s));
    pynq_mqtt_bridge::check(&s.bridge)?;
    Ok(())
}
