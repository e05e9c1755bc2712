//! Config files and broker URLs, through the CLI's own settings (its library, built
//! without the simulated board).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pynq_mqtt::settings;

fn path() -> &'static std::path::PathBuf {
    static P: OnceLock<std::path::PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("pynq-mqtt-fuzz-config-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d.join("config.toml")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok((addr, _)) = settings::parse_broker(s) {
            assert!(!addr.host.is_empty() && addr.port > 0);
        }
    }
    std::fs::write(path(), data).unwrap();
    let config = path().display().to_string();
    let args = ["config", "--config", &config, "--broker", "mqtt://127.0.0.1:1883"];
    if let Ok(s) = pynq_mqtt::cli::settings_of(args) {
        // whatever was accepted renders (the `config` command's output)
        let _ = pynq_mqtt::config_cmd::render(&s);
    }
});
