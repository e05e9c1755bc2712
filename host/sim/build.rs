//! Verilates hdl/rtl, compiles the C++ shim hdl/sim/pmq_sim.cpp, and generates Rust
//! bindings for its C header with bindgen. It also Verilates the base overlay's model
//! (hdl/models/pynq_base_model.v, behavioural models of AXI GPIO and AXI INTC, not
//! Xilinx's IP) once per board layout, PYNQ-Z1 and PYNQ-Z2, behind hdl/sim/pmq_base_sim.
//!
//! Build parameters of the simulated peripheral (environment, read at build time):
//! PYNQ_MQTT_SIM_CLK_HZ (default 1000000: one clock per microsecond keeps a paced
//! simulation cheap), PYNQ_MQTT_SIM_N_INPUTS (6) and PYNQ_MQTT_SIM_N_LEDS (10), the
//! board overlay's shape (overlays/pynq_mqtt: BTN0-3 and SW0-1; LD0-3 and the blue,
//! green and red of LD4 and LD5), PYNQ_MQTT_SIM_FIFO_DEPTH (512) and
//! PYNQ_MQTT_SIM_WITH_GEN (1: the event generator is built in, unlike the IP's default,
//! because the simulated board serves the benchmarks and the interrupt self-test; 0
//! builds the board overlay's lean IP). The shape reaches the crate as `PMQ_SIM_SHAPE`
//! (`sim --help` and the simulator's start line say it).

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

const TOP: &str = "pynq_mqtt_io";

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    exit(1);
}

fn param(name: &str, default: u32) -> u32 {
    println!("cargo:rerun-if-env-changed={name}");
    match env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| fail(&format!("{name}={v} is not a number"))),
        Err(_) => default,
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("{what}: cannot start: {e}")));
    if !out.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&out.stdout));
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        fail(&format!("{what} failed ({})", out.status));
    }
}

fn main() {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.join("../..").canonicalize().unwrap();
    let rtl = root.join("hdl/rtl");
    let shim = root.join("hdl/sim");
    let regs_h = root.join("hdl/include");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    let clk_hz = param("PYNQ_MQTT_SIM_CLK_HZ", 1_000_000);
    // the board overlay's shape, so that every topic of the README and docs/board.md
    // exists on the simulated board too
    let n_inputs = param("PYNQ_MQTT_SIM_N_INPUTS", 6);
    let n_leds = param("PYNQ_MQTT_SIM_N_LEDS", 10);
    if !(1..=32).contains(&n_inputs) || !(1..=32).contains(&n_leds) {
        fail(&format!(
            "PYNQ_MQTT_SIM_N_INPUTS={n_inputs} and PYNQ_MQTT_SIM_N_LEDS={n_leds}: each must be 1 to 32"
        ));
    }
    println!("cargo:rustc-env=PMQ_SIM_N_INPUTS={n_inputs}");
    println!("cargo:rustc-env=PMQ_SIM_N_LEDS={n_leds}");
    let fifo_depth = param("PYNQ_MQTT_SIM_FIFO_DEPTH", 512);
    let with_gen = param("PYNQ_MQTT_SIM_WITH_GEN", 1);
    if with_gen > 1 {
        fail(&format!(
            "PYNQ_MQTT_SIM_WITH_GEN={with_gen}: must be 0 or 1"
        ));
    }

    let mut sources: Vec<PathBuf> = std::fs::read_dir(&rtl)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", rtl.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|x| x.to_str()), Some("v" | "vh")))
        .collect();
    sources.sort();
    for p in &sources {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!(
        "cargo:rerun-if-changed={}",
        shim.join("pmq_sim.h").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        shim.join("pmq_sim.cpp").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        shim.join("pmq_clock_fall.h").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        regs_h.join("pynq_mqtt_io_regs.h").display()
    );
    println!("cargo:rerun-if-changed=build.rs");
    let models_dir = root.join("hdl/models");
    let mut base_sources: Vec<PathBuf> = std::fs::read_dir(&models_dir)
        .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", models_dir.display())))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("v"))
        .collect();
    base_sources.sort();
    base_sources.push(rtl.join("pmq_axil_slave.v"));
    for p in &base_sources {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    for f in ["pmq_base_sim.h", "pmq_base_sim.cpp"] {
        println!("cargo:rerun-if-changed={}", shim.join(f).display());
    }

    // --- Verilator ------------------------------------------------------------
    let vroot = match Command::new("verilator")
        .arg("--getenv")
        .arg("VERILATOR_ROOT")
        .output()
    {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => {
            fail("verilator not found: install the Debian package `verilator` (scripts/setup does)")
        }
    };
    // Verilator's makefiles name `g++` and `ar` outright: hand them the target's tools,
    // as the cc crate picks them (`arm-linux-gnueabihf-g++` for armv7, `c++` natively),
    // so a cross build of the simulated board links (issue 12).
    let cxx_tool = cc::Build::new().cpp(true).get_compiler();
    let cxx = cxx_tool.path().to_str().unwrap().to_owned();
    let ar_tool = cc::Build::new().cpp(true).get_archiver();
    let ar = ar_tool.get_program().to_str().unwrap().to_owned();
    let verilog: Vec<&PathBuf> = sources
        .iter()
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("v"))
        .collect();
    let params = [
        format!("-GCLK_HZ={clk_hz}"),
        format!("-GN_INPUTS={n_inputs}"),
        format!("-GN_LEDS={n_leds}"),
        format!("-GFIFO_DEPTH={fifo_depth}"),
        format!("-GWITH_GEN={with_gen}"),
    ];

    // One Verilator build per shape: cargo runs this script once per set of unified
    // features and per tool (clippy, `-p` builds, the benchmark), each with its own
    // OUT_DIR, and the model is the same for all of them. It lives beside them in the
    // profile's directory, named by everything it is built from.
    let key = model_key(&sources, &params, &[&cxx, &ar], &vroot);
    let models = out
        .ancestors()
        .nth(3)
        .unwrap_or_else(|| fail("OUT_DIR is not inside a cargo target directory"))
        .join("pynq-mqtt-sim-models");
    let mdir = models.join(format!("{key:016x}"));
    if !mdir.join(DONE).exists() {
        let tmp = models.join(format!("{key:016x}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp)
            .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", tmp.display())));
        verilate(&tmp, &rtl, &params, &verilog, &cxx, &ar);
        std::fs::write(tmp.join(DONE), b"")
            .unwrap_or_else(|e| fail(&format!("cannot write to {}: {e}", tmp.display())));
        // another run may have finished the same model meanwhile: either copy serves
        if std::fs::rename(&tmp, &mdir).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
        if !mdir.join(DONE).exists() {
            fail(&format!(
                "the Verilated model did not land in {}",
                mdir.display()
            ));
        }
    }
    for (from, to) in [
        (format!("V{TOP}__ALL.a"), format!("libV{TOP}.a")),
        (RUNTIME.to_owned(), RUNTIME.to_owned()),
    ] {
        std::fs::copy(mdir.join(&from), out.join(&to))
            .unwrap_or_else(|e| fail(&format!("{} missing: {e}", mdir.join(&from).display())));
    }

    // --- the base overlay's models: one Verilated class per board layout ----------
    // (PYNQ-Z1: buttons on INTC input 11; PYNQ-Z2: 13). They share the runtime above.
    let mut base_dirs = Vec::new();
    for (prefix, z2) in [(BASE_Z1, 0), (BASE_Z2, 1)] {
        let params = [
            format!("-GBOARD_Z2={z2}"),
            "--prefix".to_owned(),
            prefix.to_owned(),
        ];
        let key = model_key(&base_sources, &params, &[&cxx, &ar], &vroot);
        let dir = models.join(format!("{key:016x}"));
        if !dir.join(DONE).exists() {
            let tmp = models.join(format!("{key:016x}.tmp-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp)
                .unwrap_or_else(|e| fail(&format!("cannot create {}: {e}", tmp.display())));
            let sources: Vec<&PathBuf> = base_sources.iter().collect();
            verilate_only(&tmp, BASE_TOP, &rtl, &params, &sources, &cxx, &ar);
            std::fs::write(tmp.join(DONE), b"")
                .unwrap_or_else(|e| fail(&format!("cannot write to {}: {e}", tmp.display())));
            if std::fs::rename(&tmp, &dir).is_err() {
                let _ = std::fs::remove_dir_all(&tmp);
            }
            if !dir.join(DONE).exists() {
                fail(&format!(
                    "the Verilated model did not land in {}",
                    dir.display()
                ));
            }
        }
        let from = dir.join(format!("{prefix}__ALL.a"));
        std::fs::copy(&from, out.join(format!("lib{prefix}.a")))
            .unwrap_or_else(|e| fail(&format!("{} missing: {e}", from.display())));
        base_dirs.push(dir);
    }

    // --- the shim ---------------------------------------------------------------
    let vinc = vroot.join("include");
    cc::Build::new()
        .cpp(true)
        .std("c++17")
        .file(shim.join("pmq_sim.cpp"))
        .include(&shim)
        .include(&regs_h)
        .include(&mdir)
        .flag("-isystem")
        .flag(vinc.to_str().unwrap())
        .flag("-isystem")
        .flag(vinc.join("vltstd").to_str().unwrap())
        .define("PMQ_SIM_CLK_HZ", Some(clk_hz.to_string().as_str()))
        .define("PMQ_SIM_N_INPUTS", Some(n_inputs.to_string().as_str()))
        .define("PMQ_SIM_N_LEDS", Some(n_leds.to_string().as_str()))
        .define("PMQ_SIM_WITH_GEN", Some(with_gen.to_string().as_str()))
        .opt_level(2)
        .warnings(true)
        .compile("pmq_sim");
    let mut base = cc::Build::new();
    base.cpp(true)
        .std("c++17")
        .file(shim.join("pmq_base_sim.cpp"))
        .include(&shim);
    for d in &base_dirs {
        base.include(d);
    }
    base.flag("-isystem")
        .flag(vinc.to_str().unwrap())
        .flag("-isystem")
        .flag(vinc.join("vltstd").to_str().unwrap())
        .opt_level(2)
        .warnings(true)
        .compile("pmq_base_sim");

    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=static=V{TOP}");
    println!("cargo:rustc-link-lib=static={BASE_Z1}");
    println!("cargo:rustc-link-lib=static={BASE_Z2}");
    println!("cargo:rustc-link-lib=static=pmq_verilated_rt");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo:rustc-link-lib=dylib=pthread");

    bindings(&shim.join("pmq_sim.h"), &out.join("bindings.rs"), "pmq_sim");
    bindings(
        &shim.join("pmq_base_sim.h"),
        &out.join("base_bindings.rs"),
        "pmq_base_sim",
    );
}

/// bindgen panics with a page of text when libclang is missing: replace that with one line.
fn bindings(header: &Path, dest: &Path, name: &'static str) {
    let header = header.to_str().unwrap().to_owned();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(move || {
        bindgen::Builder::default()
            .header(header)
            .allowlist_function(format!("{name}_.*"))
            .allowlist_var(format!("{}_.*", name.to_uppercase()))
            .allowlist_type(name)
            .opaque_type(name)
            .generate()
    });
    std::panic::set_hook(default_hook);
    match result {
        Ok(Ok(b)) => b
            .write_to_file(dest)
            .unwrap_or_else(|e| fail(&format!("cannot write bindings: {e}"))),
        Ok(Err(e)) => fail(&format!("bindgen failed on {name}.h: {e}")),
        Err(_) => fail("libclang not found (bindgen needs it): install the Debian package `libclang-dev` (scripts/setup does)"),
    }
}

/// The base overlay's model and its two Verilated classes (PYNQ-Z1, PYNQ-Z2).
const BASE_TOP: &str = "pynq_base_model";
const BASE_Z1: &str = "Vpynq_base_z1";
const BASE_Z2: &str = "Vpynq_base_z2";

/// Marks a finished model directory.
const DONE: &str = ".done";
/// The Verilator runtime objects, in an archive of our own.
const RUNTIME: &str = "libpmq_verilated_rt.a";

/// Verilates the RTL with `params` into `mdir` and builds the model's archive and the
/// runtime archive there.
fn verilate(mdir: &Path, rtl: &Path, params: &[String], verilog: &[&PathBuf], cxx: &str, ar: &str) {
    run(
        Command::new("verilator")
            .args(["--cc", "--build", "-j", "2", "-O3", "--x-assign", "fast"])
            .args(["--x-initial", "fast", "--top-module", TOP])
            // the register file's byte-lane write of LED_PWM (8 x N_LEDS bits, up to 256)
            // is a loop; Verilator unrolls up to 64 iterations by default and otherwise
            // runs the loop on every clock: 209 -> 96 ns per clock at 10 LEDs
            .args(["--unroll-count", "256"])
            .arg("-Mdir")
            .arg(mdir)
            .arg(format!("-I{}", rtl.display()))
            .args(params)
            .args(["-CFLAGS", "-fPIC"])
            // the model's default is -Os; -O2 steps the clock 10-20 % faster (idle daemon:
            // sim-clock 10.4 -> 8.4 % of a core at 1 MHz), -O3 another 5-8 % (the fastest
            // of six alternating runs of 2M clocks: 120 against 130 ns per clock)
            .args(["-MAKEFLAGS", "OPT_FAST=-O3"])
            .args(["-MAKEFLAGS", &format!("CXX={cxx}")])
            .args(["-MAKEFLAGS", &format!("LINK={cxx}")])
            .args(["-MAKEFLAGS", &format!("AR={ar}")])
            .args(verilog),
        "verilator",
    );
    run(
        Command::new("make")
            .arg("-C")
            .arg(mdir)
            .arg("-f")
            .arg(format!("V{TOP}.mk"))
            .args(["-j2", "verilated.o", "verilated_threads.o"])
            .arg(format!("CXX={cxx}"))
            .arg(format!("AR={ar}")),
        "make verilated runtime",
    );
    run(
        Command::new(ar)
            .arg("crs")
            .arg(mdir.join(RUNTIME))
            .arg(mdir.join("verilated.o"))
            .arg(mdir.join("verilated_threads.o")),
        "ar",
    );
}

/// Verilates `top` with `params` into `mdir` and builds the model's archive only (the
/// runtime comes from the main model, built with the same flags).
fn verilate_only(
    mdir: &Path,
    top: &str,
    inc: &Path,
    params: &[String],
    verilog: &[&PathBuf],
    cxx: &str,
    ar: &str,
) {
    run(
        Command::new("verilator")
            .args(["--cc", "--build", "-j", "2", "-O3", "--x-assign", "fast"])
            .args(["--x-initial", "fast", "--top-module", top])
            .arg("-Mdir")
            .arg(mdir)
            .arg(format!("-I{}", inc.display()))
            .args(params)
            .args(["-CFLAGS", "-fPIC"])
            .args(["-MAKEFLAGS", "OPT_FAST=-O3"])
            .args(["-MAKEFLAGS", &format!("CXX={cxx}")])
            .args(["-MAKEFLAGS", &format!("LINK={cxx}")])
            .args(["-MAKEFLAGS", &format!("AR={ar}")])
            .args(verilog),
        "verilator (base overlay model)",
    );
}

/// A name for the model built from these inputs: the sources' contents, the parameters,
/// the tools (the target's compiler and archiver), Verilator itself and this script,
/// whose flags shape the model too. FNV-1a: stable across Rust versions.
fn model_key(sources: &[PathBuf], params: &[String], tools: &[&str], vroot: &Path) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for b in bytes.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for p in sources {
        eat(p.file_name().unwrap().as_encoded_bytes());
        eat(&std::fs::read(p)
            .unwrap_or_else(|e| fail(&format!("cannot read {}: {e}", p.display()))));
    }
    for p in params {
        eat(p.as_bytes());
    }
    for t in tools {
        eat(t.as_bytes());
    }
    eat(vroot.as_os_str().as_encoded_bytes());
    let version = Command::new("verilator").arg("--version").output();
    eat(&version.map(|o| o.stdout).unwrap_or_default());
    eat(env::var("TARGET").unwrap_or_default().as_bytes());
    eat(include_bytes!("build.rs"));
    h
}
