//! `pynq-mqtt-bench`: the benchmark (benches/README.md); `pynq-mqtt bench` runs it.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = pynq_mqtt_bench::BenchArgs::parse();
    match pynq_mqtt_bench::run(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pynq-mqtt-bench: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
