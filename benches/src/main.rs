//! `pynq-mqtt-bench`: the same as `pynq-mqtt bench`.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = pynq_mqtt_bench::BenchArgs::parse();
    let exe = std::env::current_exe().expect("own executable");
    match pynq_mqtt_bench::run(args, vec![exe.into()]) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pynq-mqtt-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
