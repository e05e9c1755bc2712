//! Config files and broker URLs, through the CLI's own settings module (included
//! from source: it is a module of the `pynq-mqtt` binary).
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, clippy::all)]
#[path = "../../host/cli/src/settings.rs"]
mod settings;

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
    let args = settings::CommonArgs {
        config: Some(path().clone()),
        ..settings::CommonArgs::default()
    };
    if let Ok(s) = settings::resolve(&args, None, Some("mqtt://127.0.0.1:1883")) {
        // whatever was accepted renders (the `config` command's output)
        let _ = settings::render(&s);
    }
});
