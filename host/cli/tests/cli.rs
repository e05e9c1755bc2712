//! The command line as a user meets it: flags under help headings with clap's
//! defaults, only the flags a subcommand uses, -v/-q/RUST_LOG/--log, one error style,
//! and a closed stdout or stderr ending the process quietly.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const ERROR: &str = "pynq-mqtt: error: ";

/// The binary in a clean environment (no PYNQ_MQTT_*, no RUST_LOG) plus `env`.
fn cmd(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pynq-mqtt"));
    c.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PYNQ_MQTT_") || k == "RUST_LOG") {
        c.env_remove(k);
    }
    c.envs(env.iter().copied());
    c
}

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    cmd(args, env).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The daemon on the simulated board against a port nobody listens on, for a moment:
/// its log (it logs at every level while it retries).
fn daemon_log(extra: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = vec!["run", "--board", "sim", "--broker", "mqtt://127.0.0.1:1"];
    args.extend(["--reconnect-min", "0.05", "--reconnect-max", "0.1"]);
    let mut all: Vec<&str> = extra.to_vec();
    all.extend(args);
    let mut child = cmd(&all, env)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    child.kill().unwrap();
    stderr(&child.wait_with_output().unwrap())
}

#[test]
fn flags_are_under_headings_with_clap_defaults() {
    let out = run(&["run", "--help"], &[]);
    assert!(out.status.success(), "{out:?}");
    let help = String::from_utf8_lossy(&out.stdout);
    let headings = [
        "Broker:",
        "TLS:",
        "Topics:",
        "Payloads:",
        "Hardware:",
        "Home Assistant:",
    ];
    let at: Vec<usize> = headings
        .iter()
        .map(|h| {
            help.find(&format!("\n{h}\n"))
                .unwrap_or_else(|| panic!("{h} in {help}"))
        })
        .collect();
    assert!(at.windows(2).all(|w| w[0] < w[1]), "heading order: {help}");
    let line = |flag: &str| {
        let l = help.lines().find(|l| l.trim_start().starts_with(flag));
        l.unwrap_or_else(|| panic!("{flag} in {help}")).to_owned()
    };
    for (flag, default) in [
        ("--qos", "0"),
        ("--board", "uio"),
        ("--broker", "mqtt://localhost:1883"),
        ("--keep-alive", "30"),
        ("--sim-speed", "realtime"),
    ] {
        assert!(
            line(flag).contains(&format!("[default: {default}]")),
            "{}",
            line(flag)
        );
    }
    // a default is clap's, not prose beside it
    for l in help.lines().filter(|l| l.contains("[default:")) {
        assert!(!l.contains("(default"), "{l}");
    }
    // the Logging heading is on every subcommand
    let out = run(&["doctor", "--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("\nLogging:\n") && help.contains("-v, --verbose"),
        "{help}"
    );
}

#[test]
fn a_subcommand_refuses_the_flags_it_has_no_use_for() {
    for args in [
        &["doctor", "--ha-remove"][..],
        &["doctor", "--stimulus", "/nonexist"],
        &["doctor", "--qos", "1"],
        &["config", "--ha-remove"],
        &["sim", "--broker", "mqtt://h:1"],
        &["sim", "--board", "uio"],
        &["regs", "--prefix", "p/"],
    ] {
        let out = run(args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(
            first.starts_with(ERROR) && first.contains(args[1]),
            "{args:?}: {err}"
        );
    }
    // and still takes the ones it uses
    let out = run(
        &[
            "config",
            "--board",
            "sim",
            "--stimulus",
            "/x",
            "--ha-discovery",
            "true",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn a_stimulus_on_a_uio_board_is_one_line() {
    for args in [
        &["config", "--board", "uio", "--stimulus", "x"][..],
        &["config", "--stimulus", "x"],
        &["run", "--stimulus", "x"],
    ] {
        let out = run(args, &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with(&format!("{ERROR}--stimulus: ")), "{err}");
        assert!(err.contains("--board sim"), "{err}");
    }
    let dir = std::env::temp_dir().join(format!("pynq-mqtt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, "board = \"uio\"\nstimulus = \"x\"\n").unwrap();
    let out = run(&["config", "--config", file.to_str().unwrap()], &[]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.contains("line 2") && err.contains("`stimulus`"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn verbose_and_quiet_move_the_level() {
    let normal = daemon_log(&[], &[]);
    assert!(
        normal.contains(" INFO ") && !normal.contains("DEBUG"),
        "{normal}"
    );
    let verbose = daemon_log(&["-v"], &[]);
    assert!(
        verbose.contains("DEBUG") && !verbose.contains("TRACE"),
        "{verbose}"
    );
    let quiet = daemon_log(&["-q"], &[]);
    assert!(
        quiet.contains(" WARN ") && !quiet.contains(" INFO "),
        "{quiet}"
    );
    let silent = daemon_log(&["-qqq"], &[]);
    assert!(silent.is_empty(), "{silent}");
}

#[test]
fn rust_log_is_read_unless_the_log_is_given() {
    let debug = daemon_log(&[], &[("RUST_LOG", "debug")]);
    assert!(debug.contains("DEBUG"), "{debug}");
    let warn = daemon_log(&[], &[("RUST_LOG", "warn")]);
    assert!(
        !warn.contains(" INFO ") && warn.contains(" WARN "),
        "{warn}"
    );
    let ours = daemon_log(&[], &[("RUST_LOG", "debug"), ("PYNQ_MQTT_LOG", "info")]);
    assert!(ours.contains(" INFO ") && !ours.contains("DEBUG"), "{ours}");
    let flag = daemon_log(&["--log", "warn"], &[("RUST_LOG", "debug")]);
    assert!(
        !flag.contains(" INFO ") && flag.contains(" WARN "),
        "{flag}"
    );
}

#[test]
fn an_invalid_log_filter_is_an_error() {
    for (args, env) in [
        (&["--log", "garbage", "config"][..], &[][..]),
        (&["config"], &[("PYNQ_MQTT_LOG", "inf")]),
        (&["--log", "pynq_mqtt_driver=loud", "config"], &[]),
    ] {
        let out = run(args, env);
        let err = stderr(&out);
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{args:?}: {err}"
        );
        assert!(err.starts_with(ERROR) && err.contains("--log"), "{err}");
    }
    let out = run(&["config"], &[("RUST_LOG", "a=b=c")]);
    let err = stderr(&out);
    assert!(
        !out.status.success() && err.starts_with(ERROR) && err.contains("RUST_LOG"),
        "{err}"
    );
    let out = run(
        &["--log", "warn,pynq_mqtt_driver=debug", "-v", "config"],
        &[],
    );
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The output's read end closed before the program writes, as `| head -1` leaves it.
fn with_closed(stdout: bool, stderr: bool, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut c = cmd(args, &[]);
    let captured = if stdout {
        c.stdout(writer.try_clone().unwrap())
    } else {
        c.stdout(Stdio::piped())
    };
    if stderr {
        captured.stderr(writer);
    } else {
        captured.stderr(Stdio::piped());
        drop(writer);
    }
    let start = Instant::now();
    let out = c.spawn().unwrap().wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    let said = String::from_utf8_lossy(&out.stdout).into_owned() + &self::stderr(&out);
    (out.status.code(), said)
}

#[test]
fn a_closed_output_ends_the_process_quietly() {
    // help and version: clap's own, status 0
    assert_eq!(with_closed(true, true, &["--help"]).0, Some(0));
    // a report on stdout, stderr open: nothing said, status 141
    let (code, said) = with_closed(true, false, &["config"]);
    assert_eq!((code, said.as_str()), (Some(141), ""));
    // the daemon's first log line, stdout open: it ends, nothing said
    let (code, said) = with_closed(
        false,
        true,
        &["run", "--board", "sim", "--broker", "mqtt://127.0.0.1:1"],
    );
    assert_eq!((code, said.as_str()), (Some(141), ""));
    // an error with nowhere to go
    let (code, _) = with_closed(true, true, &["config", "--qos", "9"]);
    assert_eq!(code, Some(141));
}

/// Every kind of error opens the same way: a usage error, a bad value, a bad file,
/// a failure at run time.
#[test]
fn every_error_has_one_style() {
    let dir = std::env::temp_dir().join(format!("pynq-mqtt-style-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(&file, "qos = 7\n").unwrap();
    let file = file.display().to_string();
    for args in [
        &["config", "--bogus"][..],
        &["config", "--qos", "7"],
        &["config", "--config", &file],
        &["config", "--config", "/nonexistent/c.toml"],
        &["regs", "--device", "/dev/nonexistent-uio"],
    ] {
        let out = run(args, &[]);
        let err = stderr(&out);
        assert!(!out.status.success(), "{args:?}");
        assert!(
            err.starts_with(ERROR) && !err.contains("\nerror"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The keys' table in host/README.md lists every key under the heading `--help`
/// puts its flag under.
#[test]
fn the_key_documentation_follows_the_help_headings() {
    let out = run(&["run", "--help"], &[]);
    let help = String::from_utf8_lossy(&out.stdout);
    let mut under = std::collections::HashMap::new();
    let mut heading = String::new();
    for l in help.lines() {
        match l.strip_suffix(':') {
            Some(h) if !l.starts_with(' ') => heading = h.to_owned(),
            _ => {
                let flag = l.split_whitespace().find(|w| w.starts_with("--"));
                if let Some(flag) = flag {
                    under.insert(flag.trim_end_matches(',').to_owned(), heading.clone());
                }
            }
        }
    }
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"));
    let readme = readme.unwrap();
    let table = readme.split("\n## Settings\n").nth(1).unwrap();
    let (mut heading, mut documented) = (String::new(), Vec::new());
    for row in table.lines().skip_while(|l| !l.starts_with('|')) {
        if !row.starts_with('|') {
            break;
        }
        let first = row.split('|').nth(1).unwrap().trim();
        if let Some(h) = first.strip_prefix("**").and_then(|h| h.strip_suffix("**")) {
            heading = h.to_owned();
            continue;
        }
        let keys = first.split('`').skip(1).step_by(2);
        let is_key = |k: &&str| k.chars().all(|c| c.is_ascii_lowercase() || c == '_');
        for key in keys.filter(is_key) {
            let flag = format!("--{}", key.replace('_', "-"));
            assert_eq!(under.get(&flag), Some(&heading), "{key} in host/README.md");
            documented.push(key.to_owned());
        }
    }
    for key in pynq_mqtt::settings::KEYS {
        assert!(
            documented.contains(&key.to_string()),
            "{key} not in host/README.md"
        );
    }
    assert_eq!(under.get("--log").map(String::as_str), Some("Logging"));
}
