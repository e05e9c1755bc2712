//! The broker password, from its variable or its file; and warnings about secrets at
//! rest and on the wire, given once when the daemon starts: a password file or TLS key
//! that every local user can read, and a password sent in clear (`mqtt://`) to a
//! broker off this machine.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use pynq_mqtt_bridge::{BridgeConfig, Secret};

/// The environment variable that carries the broker password (there is no flag:
/// a password on the command line is visible to every user in `ps`).
pub const PASSWORD_ENV: &str = "PYNQ_MQTT_PASSWORD";

/// The password: the variable (then `true`), else the first line of the file. The
/// error names the file, never its text.
pub fn password(file: Option<&Path>) -> Result<Option<(Secret, bool)>, String> {
    if let Ok(p) = std::env::var(PASSWORD_ENV) {
        return Ok(Some((Secret::new(p), true)));
    }
    let Some(path) = file else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read password file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or_default();
    Ok(Some((Secret::new(line.to_owned()), false)))
}

/// Whether a file of this mode can be read by users outside its owner and group.
pub fn readable_by_others(mode: u32) -> bool {
    mode & 0o004 != 0
}

/// A warning for each secret file readable by others, and for a password in clear.
pub fn warnings(password_file: Option<&Path>, cfg: &BridgeConfig) -> Vec<String> {
    let key = cfg.tls.as_ref().and_then(|t| t.client_key.as_deref());
    let mut out: Vec<String> = [("password file", password_file), ("TLS key", key)]
        .into_iter()
        .filter_map(|(what, path)| Some((what, path?)))
        .filter_map(|(what, path)| {
            let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
            readable_by_others(mode).then(|| {
                let path = path.display();
                format!("{what} {path} is readable by every user (mode {mode:o}): chmod o-r it")
            })
        })
        .collect();
    if cfg.password_in_clear() {
        let url = cfg.broker_url();
        out.push(format!(
            "the password goes in clear to {url}: use mqtts:// off this machine"
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_others_read_bit_counts() {
        assert!(readable_by_others(0o100644));
        assert!(readable_by_others(0o604));
        assert!(!readable_by_others(0o100640));
        assert!(!readable_by_others(0o600));
        assert!(!readable_by_others(0o660));
    }

    #[test]
    fn a_world_readable_key_and_a_clear_password_are_named() {
        let dir = std::env::temp_dir().join(format!("pynq-mqtt-secrets-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (open, closed) = (dir.join("open.key"), dir.join("closed.key"));
        for (p, mode) in [(&open, 0o644), (&closed, 0o640)] {
            std::fs::write(p, "k").unwrap();
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let mut cfg = BridgeConfig::new("127.0.0.1", 1883);
        assert!(warnings(Some(&closed), &cfg).is_empty());
        let w = warnings(Some(&open), &cfg);
        assert!(w.len() == 1 && w[0].contains("open.key"), "{w:?}");
        cfg.password = Some(pynq_mqtt_bridge::Secret::new("pw"));
        cfg.username = Some("u".into());
        assert!(warnings(None, &cfg).is_empty(), "loopback is not the wire");
        cfg.host = "broker.lan".into();
        let w = warnings(Some(&closed), &cfg);
        assert!(
            w.len() == 1 && w[0].contains("mqtt://broker.lan:1883"),
            "{w:?}"
        );
        cfg.tls = Some(pynq_mqtt_bridge::TlsConfig {
            client_key: Some(open.clone()),
            ..Default::default()
        });
        let w = warnings(None, &cfg);
        assert!(w.len() == 1 && w[0].contains("TLS key"), "{w:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
