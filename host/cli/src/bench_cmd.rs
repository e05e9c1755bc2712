//! `pynq-mqtt bench`: runs the benchmark's own program, `pynq-mqtt-bench` (benches/),
//! with the arguments as given. The daemon does not link the benchmark: it is found
//! beside this executable, or in `target/` of the checkout the current directory is in.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

const BENCH: &str = "pynq-mqtt-bench";

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct BenchArgs {
    /// Arguments of pynq-mqtt-bench (`pynq-mqtt bench --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<OsString>,
}

/// The benchmark's program: beside `exe`, else under `target/{release,debug}` of the
/// first checkout (a directory with Cargo.toml and benches/) above `cwd`.
fn find(exe: &Path, cwd: &Path) -> Option<PathBuf> {
    let beside = exe.parent().map(|d| d.join(BENCH));
    let in_checkout = cwd
        .ancestors()
        .find(|d| d.join("Cargo.toml").is_file() && d.join("benches").is_dir())
        .into_iter()
        .flat_map(|root| ["release", "debug"].map(|p| root.join("target").join(p).join(BENCH)));
    beside.into_iter().chain(in_checkout).find(|p| p.is_file())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let exe = std::env::current_exe().context("own executable")?;
    let cwd = std::env::current_dir().context("current directory")?;
    let Some(bench) = find(&exe, &cwd) else {
        bail!(
            "{BENCH} is not built (looked beside {} and in target/ of the checkout): cargo build --release -p {BENCH}",
            exe.display()
        );
    };
    let status = std::process::Command::new(&bench)
        .args(&args.args)
        .status()
        .with_context(|| format!("start {}", bench.display()))?;
    // its own error line is printed; its status is ours
    std::process::exit(status.code().unwrap_or(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_beside_the_executable_before_the_checkout() {
        let d = std::env::temp_dir().join(format!("pynq-mqtt-bench-find-{}", std::process::id()));
        let bin = d.join("bin");
        let checkout = d.join("checkout");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(checkout.join("benches")).unwrap();
        std::fs::create_dir_all(checkout.join("target/debug")).unwrap();
        std::fs::write(checkout.join("Cargo.toml"), "").unwrap();
        let exe = bin.join("pynq-mqtt");
        assert_eq!(find(&exe, &checkout.join("benches")), None);
        std::fs::write(checkout.join("target/debug").join(BENCH), "").unwrap();
        assert_eq!(
            find(&exe, &checkout.join("benches")),
            Some(checkout.join("target/debug").join(BENCH))
        );
        std::fs::write(bin.join(BENCH), "").unwrap();
        assert_eq!(find(&exe, &checkout), Some(bin.join(BENCH)));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
