//! `pynq-mqtt`: a PYNQ board's buttons and LEDs as an MQTT device.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    pynq_mqtt::cli::main()
}
