//! The settings' types and their names in `--help`. Each is read from text (a flag or
//! a variable) by its own `FromStr` and from TOML by serde, both implemented by the
//! crate that owns the type; `pynq_mqtt_layers` makes the ranges and the booleans.

use std::path::PathBuf;

use pynq_mqtt_bridge::{BrokerUrl, Names, PayloadFormat, Qos, Seconds, SessionMode, StateFormat};
use pynq_mqtt_bus::uio::DeviceSpec;
use pynq_mqtt_layers::{Bool, Int, Value};

use super::BoardKind;

/// A setting's type, named in `--help`.
pub trait Named: Value {
    const NAME: &'static str;
}

macro_rules! from_str {
    ($($t:ty = $name:literal),+) => {$(
        impl Named for $t {
            const NAME: &'static str = $name;
        }
    )+};
}
from_str!(
    String = "TEXT",
    PathBuf = "FILE",
    DeviceSpec = "DEVICE",
    BrokerUrl = "URL",
    pynq_mqtt_bridge::Brokers = "URL"
);
from_str!(
    PayloadFormat = "plain|json",
    SessionMode = "persistent|clean",
    Qos = "0|1|2",
    StateFormat = "10|onoff"
);
from_str!(
    BoardKind = "uio|sim|base|base-sim",
    Names = "NAMES",
    Seconds = "SECS"
);
from_str!(
    crate::base_board::BaseRegs = "devmem|uio:NAME",
    crate::base_board::PynqBoard = "auto|z1|z2"
);
from_str!(pynq_mqtt_bridge::Protocol = "3.1.1|5");
from_str!(pynq_mqtt_web::HttpAddr = "[HOST:]PORT");
#[cfg(feature = "sim")]
from_str!(super::SimSpeed = "SPEED");
from_str!(Bool = "BOOL");

impl<const MIN: u64, const MAX: u64> Named for Int<MIN, MAX> {
    const NAME: &'static str = "N";
}
