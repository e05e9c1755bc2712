//! `pynq-mqtt`: a PYNQ board's buttons and LEDs as an MQTT device. The binary is
//! [`cli::main`]; the library is there for the tests and fuzz targets, which use the
//! settings and the command line as the binary does.
#![forbid(unsafe_code)]

mod base_board;
#[cfg(feature = "sim")]
mod bench_cmd;
mod board;
#[cfg(feature = "sim")]
mod broker;
#[cfg(feature = "sim")]
mod broker_cmd;
pub mod cli;
pub mod config_cmd;
mod daemon;
mod doctor;
pub mod identity;
mod regs_cmd;
mod secrets;
pub mod settings;
#[cfg(feature = "sim")]
mod sim_cmd;
#[cfg(feature = "sim")]
pub mod tui;
mod web;
