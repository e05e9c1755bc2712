//! `--board base` where there is no base overlay, and `--board base-sim`: one-line
//! errors that name the fix, and the models' registers through `regs`.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pynq-mqtt"));
    c.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("PYNQ_MQTT_") || k == "RUST_LOG") {
        c.env_remove(k);
    }
    c.output().unwrap()
}

fn one_error_line(o: &Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

fn tree(tag: &str) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!("pynq-mqtt-base-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for d in ["sys/class/uio", "dev", "proc/device-tree/chosen"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    root
}

#[test]
fn no_board_here_points_at_base_sim() {
    let root = tree("pc");
    let sys = root.join("sys");
    let out = run(&[
        "run",
        "--board",
        "base",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--sysfs-root",
        sys.to_str().unwrap(),
    ]);
    let err = one_error_line(&out);
    assert!(
        err.contains("no PYNQ board here") && err.contains("--board base-sim"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn a_missing_fabric_device_is_one_line() {
    let root = tree("nofabric");
    let fpga = root.join("sys/class/fpga_manager/fpga0");
    std::fs::create_dir_all(&fpga).unwrap();
    std::fs::write(fpga.join("state"), "operating\n").unwrap();
    std::fs::write(
        root.join("proc/device-tree/chosen/pynq_board"),
        b"Pynq-Z2\0",
    )
    .unwrap();
    let p = |d: &str| root.join(d).to_str().unwrap().to_owned();
    let out = run(&[
        "run",
        "--board",
        "base",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--sysfs-root",
        &p("sys"),
        "--dev-dir",
        &p("dev"),
        "--proc-root",
        &p("proc"),
    ]);
    let err = one_error_line(&out);
    assert!(
        err.contains("\"fabric\"") && err.contains("PYNQ image"),
        "{err}"
    );
    // without the device tree's board name, the flag that decides is named
    std::fs::remove_file(root.join("proc/device-tree/chosen/pynq_board")).unwrap();
    let out = run(&[
        "run",
        "--board",
        "base",
        "--broker",
        "mqtt://127.0.0.1:1",
        "--sysfs-root",
        &p("sys"),
        "--dev-dir",
        &p("dev"),
        "--proc-root",
        &p("proc"),
    ]);
    let err = one_error_line(&out);
    assert!(err.contains("--pynq-board z1|z2"), "{err}");
    let _ = std::fs::remove_dir_all(root);
}

#[test]
fn regs_reads_the_models_of_either_board() {
    for board in ["z1", "z2"] {
        let out = run(&["regs", "--board", "base-sim", "--pynq-board", board]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("base-sim ({board}")), "{text}");
        let tri = text
            .lines()
            .find(|l| l.contains("btns_gpio") && l.contains("TRI"))
            .unwrap();
        assert!(
            tri.starts_with("0x41210004") && tri.ends_with("0x0000000f"),
            "{tri}"
        );
        assert!(
            text.lines()
                .any(|l| l.starts_with("0x4180001c") && l.contains("MER")),
            "{text}"
        );
    }
}
