//! The broker check of `doctor`: the daemon's own connect ([`pynq_mqtt_bridge::probe`]:
//! TCP, TLS when `mqtts://`, CONNECT with the configured login under a client id of
//! its own, CONNACK, DISCONNECT), with a one-line fix per kind of failure.

use std::io::ErrorKind;
use std::time::Duration;

use pynq_mqtt_bridge::{BridgeConfig, ConnectError, ProbeError, TransportError};

use super::hw::Failure;

/// Longest the whole check may take.
const TIMEOUT: Duration = Duration::from_secs(5);

const NOT_MQTT: &str = "is this an MQTT port? (mqtts:// for TLS ports such as 8883)";
const LOGIN: &str = "set --username and the password (PYNQ_MQTT_PASSWORD or --password-file) \
                     the broker expects";

pub fn check(cfg: &BridgeConfig) -> Result<String, Failure> {
    let mut cfg = cfg.clone();
    cfg.connect_timeout = cfg.connect_timeout.min(TIMEOUT);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the check: {e}"), "rerun doctor"))?;
    match rt.block_on(pynq_mqtt_bridge::probe(&cfg)) {
        Ok(r) => {
            let mut how = Vec::new();
            if r.tls {
                how.push("TLS certificate trusted");
            }
            if r.login {
                how.push("login accepted");
            }
            let how = if how.is_empty() {
                String::new()
            } else {
                format!(" ({})", how.join(", "))
            };
            Ok(format!("{} accepted an MQTT connection{how}", r.url))
        }
        Err(ProbeError::Setup(e)) => Err(Failure::new(
            e.to_string(),
            "check ca_file, client_cert, client_key and server_name",
        )),
        Err(ProbeError::Connect { url, source }) => Err(failure(&url, &source)),
    }
}

/// The cause as the bridge words it, and the fix for its kind.
fn failure(url: &str, e: &ConnectError) -> Failure {
    let cause = match e {
        ConnectError::Transport(TransportError::Io(_)) => format!("{url}: cannot connect: {e}"),
        _ => format!("{url}: {e}"),
    };
    Failure::new(cause, hint(e))
}

/// The fix for a failed connection, by its kind; `run` logs it too, once.
pub fn hint(e: &ConnectError) -> &'static str {
    match e {
        ConnectError::Refused(r) if r.is_login() => LOGIN,
        ConnectError::ClosedBeforeConnack { login: true } => LOGIN,
        ConnectError::Refused(_) => "see the broker's log",
        ConnectError::Transport(TransportError::Tls { .. }) => {
            "check ca_file, client_cert, client_key and server_name against the broker's \
             certificates"
        }
        ConnectError::Transport(t) if t.io_kind() == Some(ErrorKind::ConnectionRefused) => {
            "start the broker (e.g. `systemctl start mosquitto`) or point --broker / \
             PYNQ_MQTT_BROKER at a running one"
        }
        ConnectError::Transport(_) => {
            "check the broker's address (--broker, PYNQ_MQTT_BROKER or the config file), \
             the network and any firewall"
        }
        ConnectError::Timeout(_) => {
            "the broker did not answer in time: check it runs and that this is an MQTT \
             port (mqtts:// for TLS ports such as 8883)"
        }
        _ => NOT_MQTT,
    }
}
