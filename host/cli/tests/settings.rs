//! Settings as the command line, the environment and a config file give them: which
//! wins, where each value comes from, and errors that name their source.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use pynq_mqtt::cli::settings_of;
use pynq_mqtt::config_cmd::render;
use pynq_mqtt::settings::{parse_broker, BoardKind, BrokerAddr, Qos, SimSpeed, PASSWORD_ENV};
use pynq_mqtt_bridge::{PayloadFormat, RuleLeds};
use pynq_mqtt_bus::uio::DeviceSpec;

fn tmp(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("pynq-mqtt-settings-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file `name` holding `text` in a fresh directory: the directory and the file's path.
fn file_with(name: &str, text: &str) -> (PathBuf, String) {
    let dir = tmp(name);
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    (dir, file.display().to_string())
}

/// `pynq-mqtt config` in a clean environment plus `env`.
fn config(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pynq-mqtt"));
    c.arg("config").args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PYNQ_MQTT_")) {
        c.env_remove(k);
    }
    c.envs(env.iter().copied()).output().unwrap()
}

/// The source `config` prints for `key`.
fn source_of(out: &std::process::Output, key: &str) -> String {
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.starts_with(&format!("{key} ")));
    let line = line.unwrap_or_else(|| panic!("no {key} in {text}"));
    line.rsplit("  # ").next().unwrap().trim().to_owned()
}

#[test]
fn broker_urls() {
    let (b, tls) = parse_broker("mqtt://127.0.0.1:1884").unwrap();
    assert_eq!(
        b,
        BrokerAddr {
            host: "127.0.0.1".into(),
            port: 1884
        }
    );
    assert!(!tls);
    assert_eq!(parse_broker("mqtt://board.local").unwrap().0.port, 1883);
    assert_eq!(
        parse_broker("mqtts://board.local").unwrap(),
        (
            BrokerAddr {
                host: "board.local".into(),
                port: 8883
            },
            true
        )
    );
    assert_eq!(parse_broker("mqtt://[::1]:99").unwrap().0.host, "::1");
    for bad in [
        "127.0.0.1:1883",
        "mqtt://",
        "mqtt://h:0",
        "mqtt://h:x",
        "mqtt://h:70000",
        "tcp://h:1",
        "mqtt://u@h:1",
    ] {
        assert!(parse_broker(bad).is_err(), "{bad}");
    }
}

#[test]
fn command_line_beats_file_beats_default() {
    let dir = tmp("layers");
    let file = dir.join("c.toml");
    std::fs::write(
        &file,
        "prefix = \"f/\"\nqos = 1\npayload = \"json\"\ninput_names = [\"btn0\", \"btn1\"]\n\
         reconnect_max = 2.5\n\n[[rule]]\ntopic = \"button/0\"\naction = \"toggle\"\n",
    )
    .unwrap();
    let path = file.display().to_string();
    let s = settings_of(["config", "--config", &path, "--qos", "2", "--board", "sim"]).unwrap();
    assert_eq!(s.values.qos, Qos::ExactlyOnce, "command line wins");
    assert_eq!(
        s.values.prefix, "f/",
        "file fills what the command line leaves"
    );
    assert_eq!(s.bridge.topics.prefix, "f/");
    assert_eq!(s.bridge.payload, PayloadFormat::Json);
    assert_eq!(s.bridge.topics.input_names, ["btn0", "btn1"]);
    assert_eq!(s.bridge.reconnect_max, Duration::from_millis(2500));
    assert_eq!(s.bridge.port, 1883, "default");
    assert_eq!(s.values.board, BoardKind::Sim);
    assert_eq!(s.bridge.rules.len(), 1);
    assert_eq!(s.bridge.rules[0].leds, RuleLeds::All);
    let shown = render(&s);
    assert!(
        shown.contains("qos = 2") && shown.contains("--qos"),
        "{shown}"
    );
    assert!(
        shown.contains("prefix = \"f/\"") && shown.contains("c.toml:1"),
        "{shown}"
    );
    assert!(shown.contains("[[rule]]"), "{shown}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The daemon's defaults are the driver's: one interrupt per event, the drain
/// real-time at [`pynq_mqtt_driver::DEFAULT_RT_PRIORITY`], and 0 turns that off.
#[test]
fn hardware_defaults_are_the_drivers() {
    let s = settings_of(["config", "--board", "sim"]).unwrap();
    let d = pynq_mqtt_driver::DriverConfig::default();
    assert_eq!(s.driver.rt_priority, pynq_mqtt_driver::DEFAULT_RT_PRIORITY);
    assert!(
        s.driver.rt_priority > 0,
        "the drain is real-time by default"
    );
    assert_eq!(
        (
            s.driver.rt_priority,
            s.driver.coalesce_count,
            s.driver.coalesce_us
        ),
        (d.rt_priority, d.coalesce_count, d.coalesce_us)
    );
    let off = settings_of(["config", "--board", "sim", "--rt-priority", "0"]).unwrap();
    assert_eq!(off.driver.rt_priority, 0);
}

/// A value of the wrong TOML type is refused in the setting's words, without quoting
/// it (it could be a misplaced secret); a bad rule names its line.
#[test]
fn wrong_types_in_files_are_named_not_quoted() {
    let dir = tmp("types");
    let file = dir.join("c.toml");
    let path = file.display().to_string();
    let err = |text: &str| {
        std::fs::write(&file, text).unwrap();
        settings_of(["config", "--config", &path])
            .unwrap_err()
            .to_string()
    };
    for (text, want) in [
        (
            "qos = \"Secret1\"\n",
            "expected a whole number, found string",
        ),
        // a value no variant has: the choices, not the value (found by the
        // property test with "\n", which made the error two lines)
        (
            "board = \"Secret1\\n\"\n",
            "unknown value, expected `uio` or `sim`",
        ),
        (
            "keep_alive = \"Secret1\"\n",
            "expected seconds, found string",
        ),
        (
            "input_names = \"Secret1\"\n",
            "expected a list of strings, found string",
        ),
        (
            "ha_discovery = \"Secret1\"\n",
            "expected true or false, found string",
        ),
        ("prefix = 1\n", "expected a string, found integer"),
        ("prefix = [\"Secret1\"]\n", "expected a string, found array"),
        ("qos = 1.5\n", "expected a whole number, found float"),
        ("keep_alive = -1\n", "expected 0 to 10000000 seconds"),
        ("max_inflight = 0\n", "expected 1 to 30000"),
        (
            "sim_speed = \"slow\"\n",
            "expected `realtime`, `fast` or a factor",
        ),
        ("board = \"fpga\"\n", "`uio`"),
    ] {
        let e = err(text);
        assert!(e.contains("line 1") && e.contains(want), "{text}: {e}");
        assert!(!e.contains("Secret1"), "{e}");
    }
    let e = err("[[rule]]\ntopic = \"b\"\n\n[[rule]]\ntopic = \"c\"\nleds = \"some\"\n");
    assert!(e.contains("line 6") && e.contains("`rule.leds`"), "{e}");
    let e = err("prefix = \"p/\"\n[[rule]]\naction = \"on\"\n");
    assert!(
        e.contains("line 2") && e.contains("missing field `topic`"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_files_name_file_line_and_key() {
    let dir = tmp("bad");
    let file = dir.join("c.toml");
    let path = file.display().to_string();
    let err = |text: &str| {
        std::fs::write(&file, text).unwrap();
        settings_of(["config", "--config", &path])
            .unwrap_err()
            .to_string()
    };
    let e = err("prefix = \"f/\"\nbrokr = \"x\"\n");
    assert!(
        e.contains("line 2") && e.contains("`brokr`") && e.contains("did you mean `broker`"),
        "{e}"
    );
    assert!(e.contains("c.toml"), "{e}");
    let e = err("\n\nqos = \"high\"\n");
    assert!(e.contains("line 3") && e.contains("`qos`"), "{e}");
    let e = err("qos = 5\n");
    assert!(
        e.contains("line 1") && e.contains("`qos`") && e.contains("0, 1 or 2"),
        "{e}"
    );
    let e = err("buffer_capacity = -3\n");
    assert!(e.contains("`buffer_capacity`"), "{e}");
    let e = err("x = [\n");
    assert!(e.contains("c.toml"), "{e}");
    let e = err("[tls]\nca_file = \"x\"\n");
    assert!(
        e.contains("unknown key `tls`") && e.contains("line 1"),
        "{e}"
    );
    let e = err("[[rule]]\ntopic = \"b\"\nactoin = \"on\"\n");
    assert!(e.contains("line 3") && e.contains("rule.actoin"), "{e}");
    let e = err("led_names = [\"a\", \"a\"]\n");
    assert!(e.contains("line 1") && e.contains("twice"), "{e}");
    let e = err("ca_file = \"/x\"\n");
    assert!(e.contains("not mqtts://"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn flag_errors_name_the_flag() {
    let e = settings_of(["config", "--max-inflight", "0"])
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("--max-inflight"), "{e}");
    let e = settings_of(["config", "--broker", "tcp://x"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--broker") && e.contains("mqtt://"), "{e}");
}

#[test]
fn password_comes_from_a_file_and_is_masked() {
    let (dir, pw) = file_with("pw", "s3cret\n");
    // (PYNQ_MQTT_PASSWORD, if the test's environment had it, would win; it has not)
    if std::env::var(PASSWORD_ENV).is_err() {
        let s = settings_of(["config", "--username", "u", "--password-file", &pw]).unwrap();
        assert_eq!(s.bridge.password.as_ref().unwrap().expose(), "s3cret");
        let shown = render(&s);
        assert!(
            !shown.contains("s3cret") && shown.contains("***"),
            "{shown}"
        );
        assert!(!format!("{s:?}").contains("s3cret"));
    }
    assert!(settings_of(["config", "--password-file", &pw]).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}

/// clap's value source is the truth: a flag equal to its variable is still the flag.
#[test]
fn a_flag_equal_to_its_variable_is_labelled_as_the_flag() {
    let both = config(&["--qos", "1"], &[("PYNQ_MQTT_QOS", "1")]);
    assert!(both.status.success(), "{both:?}");
    assert_eq!(source_of(&both, "qos"), "--qos");
    let env = config(&[], &[("PYNQ_MQTT_QOS", "1")]);
    assert_eq!(source_of(&env, "qos"), "PYNQ_MQTT_QOS");
    let flag = config(&["--qos", "2"], &[("PYNQ_MQTT_QOS", "1")]);
    let text = String::from_utf8_lossy(&flag.stdout);
    assert!(text.contains("qos = 2 "), "{text}");
    assert_eq!(source_of(&flag, "qos"), "--qos");
    assert_eq!(source_of(&flag, "prefix"), "default");
}

#[test]
fn a_bad_sim_speed_is_refused_wherever_it_comes_from() {
    let (dir, path) = file_with("c.toml", "\nsim_speed = \"bogus\"\n");
    let e = settings_of(["config", "--config", &path])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("c.toml") && e.contains("line 2") && e.contains("`sim_speed`"),
        "{e}"
    );
    let out = config(&["--config", &path], &[]);
    assert!(!out.status.success(), "{out:?}");
    let e = settings_of(["config", "--sim-speed", "bogus"])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("--sim-speed") && e.contains("realtime"),
        "{e}"
    );
    for (text, speed) in [
        ("fast", SimSpeed::Fast),
        ("realtime", SimSpeed::RealTime(1.0)),
        ("2.5", SimSpeed::RealTime(2.5)),
    ] {
        let s = settings_of(["config", "--sim-speed", text]).unwrap();
        assert_eq!(s.values.sim_speed, speed);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_device_is_a_key_like_the_others() {
    let (dir, path) = file_with("device.toml", "device = \"/dev/uio4\"\n");
    let s = settings_of(["config", "--config", &path]).unwrap();
    assert_eq!(s.values.device, DeviceSpec::Node("/dev/uio4".into()));
    assert!(
        render(&s).contains("device = \"/dev/uio4\""),
        "{}",
        render(&s)
    );
    let s = settings_of(["config", "--config", &path, "--device", "other"]).unwrap();
    assert_eq!(s.values.device, DeviceSpec::Name("other".into()));
    let s = settings_of(["config"]).unwrap();
    assert_eq!(s.values.device, DeviceSpec::Name("pynq_mqtt".into()));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Issue 15 point 5: several brokers, for failover. `--broker` repeats (in order), the
/// variable takes them separated by commas, the file a list (one string still works);
/// the first is connected to first, the others are the bridge's `failover`.
#[test]
fn several_brokers_come_from_repeated_flags_commas_or_a_list() {
    let addr = |host: &str, port| BrokerAddr {
        host: host.into(),
        port,
    };
    let s = settings_of([
        "config",
        "--board",
        "sim",
        "--broker",
        "mqtt://a:1",
        "--broker",
        "mqtt://b:2",
        "--broker",
        "mqtt://c",
    ])
    .unwrap();
    assert_eq!((s.bridge.host.as_str(), s.bridge.port), ("a", 1));
    assert_eq!(s.bridge.failover, [addr("b", 2), addr("c", 1883)]);
    let shown = render(&s);
    assert!(
        shown.contains(r#"broker = ["mqtt://a:1", "mqtt://b:2", "mqtt://c:1883"]"#),
        "{shown}"
    );

    let out = config(
        &["--board", "sim"],
        &[("PYNQ_MQTT_BROKER", "mqtt://x:7, mqtt://y:8")],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(source_of(&out, "broker"), "PYNQ_MQTT_BROKER");
    assert!(String::from_utf8_lossy(&out.stdout).contains(r#"["mqtt://x:7", "mqtt://y:8"]"#));

    let (dir, path) = file_with("b.toml", "broker = [\"mqtts://n1:8883\", \"mqtts://n2\"]\n");
    let s = settings_of(["config", "--board", "sim", "--config", &path]).unwrap();
    assert_eq!((s.bridge.host.as_str(), s.bridge.failover.len()), ("n1", 1));
    assert!(s.bridge.tls.is_some(), "mqtts:// for every broker");
    std::fs::remove_dir_all(&dir).unwrap();
    let (dir, path) = file_with("one.toml", "broker = \"mqtt://solo:9\"\n");
    let s = settings_of(["config", "--board", "sim", "--config", &path]).unwrap();
    assert_eq!((s.bridge.host.as_str(), s.bridge.port), ("solo", 9));
    assert!(s.bridge.failover.is_empty());
    assert!(render(&s).contains("broker = \"mqtt://solo:9\""));
    std::fs::remove_dir_all(&dir).unwrap();

    // one scheme for all (the TLS settings are shared), each broker once
    let err = |args: &[&str]| {
        let argv = ["config", "--board", "sim"].iter().chain(args);
        format!("{:#}", settings_of(argv.copied()).unwrap_err())
    };
    let mixed = err(&["--broker", "mqtt://a:1", "--broker", "mqtts://b:2"]);
    assert!(
        mixed.starts_with("--broker:") && mixed.contains("same scheme"),
        "{mixed}"
    );
    let twice = err(&["--broker", "mqtt://a:1", "--broker", "mqtt://a:1"]);
    assert!(twice.contains("given twice"), "{twice}");
    let (dir, path) = file_with("bad.toml", "broker = [\"mqtt://a\", 5]\n");
    let bad = err(&["--config", &path]);
    assert!(
        bad.contains("line 1, key `broker`") && bad.contains("broker URL"),
        "{bad}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
