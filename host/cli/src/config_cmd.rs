//! `pynq-mqtt config`: the effective configuration, as a TOML file with the source of
//! every value (command line, environment, file and line, default) and the password
//! masked. Exits non-zero when the configuration would not start (bad value, TLS
//! file that cannot be read, bad topic names).

use anyhow::Result;
use pynq_mqtt_bridge::RuleLeds;

use crate::cli::DaemonArgs;
use crate::settings::{show, BoardArgs, BrokerArgs, CommonArgs, Settings, TlsArgs};

/// The settings of `run`.
#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub broker: BrokerArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub daemon: DaemonArgs,
    #[command(flatten)]
    pub board: BoardArgs,
}

pub fn run(s: Settings) -> Result<()> {
    print!("{}", render(&s));
    pynq_mqtt_bridge::check(&s.bridge)?;
    Ok(())
}

/// The effective configuration as a TOML file, each line with its source, the
/// password masked.
pub fn render(s: &Settings) -> String {
    let mut out = String::from(
        "# pynq-mqtt: effective configuration (command line > environment > file > defaults)\n",
    );
    let width = s
        .shown
        .iter()
        .map(|x| x.key.len() + x.value.as_ref().map_or(0, |v| v.len()) + 3)
        .max()
        .unwrap_or(0);
    for x in &s.shown {
        let line = match &x.value {
            Some(v) if x.key == "password" => format!("# password = {v}"),
            Some(v) => format!("{} = {v}", x.key),
            None => format!("# {} (not set)", x.key),
        };
        out.push_str(&format!("{line:<width$}  # {}\n", x.source));
    }
    for r in &s.bridge.rules {
        out.push_str(&format!("\n[[rule]]\ntopic = {}\n", show(&r.topic)));
        if !r.payloads.is_empty() {
            out.push_str(&format!("payloads = {}\n", show(&r.payloads)));
        }
        out.push_str(&format!("action = {}\n", show(&r.action.to_string())));
        match &r.leds {
            RuleLeds::All => out.push_str("leds = \"all\"\n"),
            RuleLeds::Some(v) => out.push_str(&format!("leds = {v:?}\n")),
        }
    }
    out
}
