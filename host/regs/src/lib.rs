//! Register map of the `pynq_mqtt_io` peripheral.
//!
//! Everything in `generated` comes from `hdl/regmap/pynq_mqtt_io.toml` through
//! `hdl/regmap/regmap.py`: the typed registers (`GEN_CTRL: Reg<GenCtrl, Rw>`), read
//! and written through [`RegBus`]; the raw offsets (`offset::GEN_CTRL`) for bus
//! backends and models that decode an address; and the register table
//! [`REGISTERS`]. This file adds the description types, `access` the typed handles.
#![forbid(unsafe_code)]

mod access;
pub mod base;
mod generated;

pub use access::{
    ReadPops, Readable, Reg, RegArray, RegBus, RegValue, Ro, Rw, W1c, WSub, Wo, Writable,
};
pub use generated::*;

/// How a register or a field may be accessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only, no side effect.
    ReadOnly,
    /// Read and write.
    ReadWrite,
    /// Reading has a side effect (pops an event): never read it for display.
    ReadPops,
    /// Write only: a write acts, reads return 0.
    WriteOnly,
    /// Sticky bits, cleared by writing 1.
    WriteOneToClear,
    /// A write subtracts the value written.
    WriteSubtracts,
}

impl Access {
    /// Whether reading the register changes the hardware state.
    pub const fn read_has_side_effect(self) -> bool {
        matches!(self, Access::ReadPops)
    }

    /// Whether reading the register tells anything.
    pub const fn readable(self) -> bool {
        !matches!(self, Access::WriteOnly)
    }

    /// The short name used in the register map (`ro`, `rw`, ...).
    pub const fn short(self) -> &'static str {
        match self {
            Access::ReadOnly => "ro",
            Access::ReadWrite => "rw",
            Access::ReadPops => "rc",
            Access::WriteOnly => "wo",
            Access::WriteOneToClear => "w1c",
            Access::WriteSubtracts => "wsub",
        }
    }
}

/// The value a register takes at reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// Not defined (read-only values, live counters).
    None,
    Value(u32),
    /// Every implemented bit set (one per input or LED of this instance).
    AllImplemented,
}

/// One bit field of a register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDesc {
    pub name: &'static str,
    pub lsb: u32,
    pub width: u32,
    pub access: Access,
}

impl FieldDesc {
    /// Extracts this field from a register value.
    pub const fn extract(&self, value: u32) -> u32 {
        let mask = if self.width >= 32 {
            u32::MAX
        } else {
            (1 << self.width) - 1
        };
        (value >> self.lsb) & mask
    }
}

/// One register: its name, offset, access and fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegDesc {
    pub name: &'static str,
    pub offset: u32,
    pub access: Access,
    pub reset: Reset,
    pub fields: &'static [FieldDesc],
}

/// Looks a register up by name (case-insensitive).
pub fn by_name(name: &str) -> Option<&'static RegDesc> {
    REGISTERS.iter().find(|r| r.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_word_fields_decode() {
        let w = EvtPop(0)
            .with_valid(true)
            .with_level(true)
            .with_input(3)
            .with_seq(0xBEEF);
        assert_eq!(w.0, 0xC003_BEEF);
        assert!(w.valid() && w.level() && !w.synthetic());
        assert!(EvtPop(0xA000_0000).synthetic());
        assert_eq!((w.input(), w.seq()), (3, 0xBEEF));
        assert!(!EvtPop(0x0003_0001).valid());
    }

    #[test]
    fn map_is_consistent() {
        let mut offsets: Vec<u32> = REGISTERS.iter().map(|r| r.offset).collect();
        offsets.sort_unstable();
        offsets.dedup();
        assert_eq!(offsets.len(), REGISTERS.len(), "offsets are unique");
        assert_eq!(by_name("evt_pop").map(|r| r.offset), Some(offset::EVT_POP));
        assert!(by_name("EVT_POP").unwrap().access.read_has_side_effect());
        let f = by_name("PARAMS").unwrap().fields[1];
        assert_eq!(f.extract(0x0009_0804), 8);
        // arrays expand into one entry per element
        assert_eq!(
            by_name("LED_PWM3").map(|r| r.offset),
            Some(offset::LED_PWM[3])
        );
        assert_eq!(
            by_name("INPUT_ENABLE").unwrap().reset,
            Reset::AllImplemented
        );
        let status = by_name("IRQ_STATUS").unwrap();
        assert_eq!(status.fields[1].access, Access::WriteOneToClear);
    }

    #[test]
    fn typed_registers_match_the_table() {
        for (name, off) in [
            (ID.name(), ID.offset()),
            (GEN_CTRL.name(), GEN_CTRL.offset()),
            (IRQ_STATUS.name(), IRQ_STATUS.offset()),
            (EVT_POP.name(), EVT_POP.offset()),
            (LED_SET.name(), LED_SET.offset()),
            (LED_PWM.at(7).name(), LED_PWM.at(7).offset()),
        ] {
            assert_eq!(by_name(name).map(|r| r.offset), Some(off), "{name}");
        }
        assert_eq!(LED_PWM.len(), 8);
        assert!(LED_PWM.get(8).is_none());
        assert_eq!(LED_PWM.at(2).offset(), offset::LED_PWM[2]);
    }
}
