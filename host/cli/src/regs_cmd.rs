//! `pynq-mqtt regs`: every register by name with its fields decoded, from the
//! generated register table. Registers whose read has a side effect (EVT_POP pops an
//! event) are never read; write-only ones show `-`. On a board the device is opened
//! read-only and without the lock, so it works next to a running daemon.

use std::fmt::Write as _;

use anyhow::{bail, Result};
use pynq_mqtt_bus::uio::Mode;
use pynq_mqtt_bus::Bus;
use pynq_mqtt_regs::{self as regs, Access, RegBus, RegDesc, REGISTERS};

use crate::board::{self, SysPaths};
use crate::settings::{default_device, BoardArgs};

/// `regs` reads no config file: its board and device are the flags, the variables or
/// the defaults.
#[derive(clap::Args, Debug)]
pub struct RegsArgs {
    #[command(flatten)]
    pub board: BoardArgs,
    #[command(flatten)]
    pub paths: SysPaths,
    /// Dump even if the ID register names another IP (its reads may have effects).
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: &RegsArgs) -> Result<()> {
    let device = args.board.device.clone().unwrap_or_else(default_device);
    let kind = args.board.board.unwrap_or_default();
    if kind.base() {
        let bs = crate::base_board::BaseSettings {
            regs: args.board.base_regs.clone().unwrap_or_default(),
            board: args.board.pynq_board.unwrap_or_default(),
            ..Default::default()
        };
        let board = crate::base_board::open(kind, &bs, &args.paths, Mode::Observe)?;
        let bus = board.bus();
        if let Err(e) = pynq_mqtt_driver::base::probe_base(bus.as_ref()) {
            if !args.force {
                bail!("{}: {e}; --force reads anyway", bus.describe());
            }
        }
        print!("{}", render_base(bus.as_ref())?);
        return Ok(());
    }
    let board = board::open(kind, &args.paths, &device, Mode::Observe)?;
    let bus = board.bus();
    let id = bus.read(regs::ID)?;
    if id != regs::ID_VALUE && !args.force {
        bail!(
            "{}: the ID register reads {id:#010x}, not {:#010x}: this is not a pynq_mqtt_io; \
             not reading further (another IP's registers may act on reads); --force reads anyway",
            bus.describe(),
            regs::ID_VALUE
        );
    }
    print!("{}", render(bus.as_ref(), id)?);
    Ok(())
}

/// The base overlay's registers that `--board base` uses, one line each (none of
/// them acts on a read).
pub fn render_base(bus: &dyn Bus) -> Result<String> {
    use pynq_mqtt_regs::base::{self as b, intc};
    let mut out = String::new();
    writeln!(
        out,
        "{}: PYNQ base overlay (offsets from {:#010x})",
        bus.describe(),
        b::BASE_ADDR
    )?;
    writeln!(
        out,
        "{:<10}  {:<17}  {:<8}  value",
        "address", "block", "register"
    )?;
    let mut row = |block: &str, name: &str, off: u32| -> Result<()> {
        let v = match bus.read32(off) {
            Ok(v) => format!("{v:#010x}"),
            Err(e) => format!("? read failed: {e}"),
        };
        writeln!(
            out,
            "{:#010x}  {block:<17}  {name:<8}  {v}",
            b::BASE_ADDR + off
        )?;
        Ok(())
    };
    for g in [
        b::SWITCHES_GPIO,
        b::BTNS_GPIO,
        b::RGBLEDS_GPIO,
        b::LEDS_GPIO,
    ] {
        row(g.name, "DATA", g.data().offset())?;
        row(g.name, "TRI", g.tri().offset())?;
        row(g.name, "GIER", g.gier().offset())?;
        row(g.name, "IP_ISR", g.isr().offset())?;
        row(g.name, "IP_IER", g.ier().offset())?;
    }
    for (name, off) in [
        ("ISR", intc::ISR.offset()),
        ("IPR", intc::IPR.offset()),
        ("IER", intc::IER.offset()),
        ("MER", intc::MER.offset()),
    ] {
        row("system_interrupts", name, off)?;
    }
    Ok(out)
}

/// The dump: a heading, then one line per register.
pub fn render(bus: &dyn Bus, id: u32) -> Result<String> {
    let version = bus.read(regs::VERSION)?;
    let mut out = String::new();
    writeln!(
        out,
        "{}: ID {id:#010x}, register map {}.{} (this build: {}.{})",
        bus.describe(),
        version.major(),
        version.minor(),
        regs::VERSION_MAJOR,
        regs::VERSION_MINOR
    )?;
    writeln!(
        out,
        "{:<6}  {:<14}  {:<6}  {:<10}  fields",
        "offset", "register", "access", "value"
    )?;
    for r in REGISTERS {
        writeln!(out, "{}", line(bus, r))?;
    }
    Ok(out)
}

fn line(bus: &dyn Bus, r: &RegDesc) -> String {
    let head = format!("{:#06x}  {:<14}  {:<6}", r.offset, r.name, r.access.short());
    if r.access.read_has_side_effect() {
        return format!("{head}  {:<10}  not read: a read pops an event", "-");
    }
    if !r.access.readable() || r.access == Access::WriteOnly {
        return format!("{head}  {:<10}  write only", "-");
    }
    // a walk of the table, so the raw word; the typed registers are for code that
    // knows which one it reads
    match bus.read32(r.offset) {
        Ok(v) => format!("{head}  {v:#010x}  {}", fields(r, v))
            .trim_end()
            .to_owned(),
        Err(e) => format!("{head}  {:<10}  read failed: {e}", "?"),
    }
}

/// `NAME=value ...`; for a register without fields the value as text when it reads
/// as four letters (the ID), else in decimal when that differs from the hex.
fn fields(r: &RegDesc, v: u32) -> String {
    if r.fields.is_empty() {
        let bytes = v.to_be_bytes();
        return if bytes.iter().all(u8::is_ascii_graphic) {
            format!("\"{}\"", String::from_utf8_lossy(&bytes))
        } else if v > 9 {
            v.to_string()
        } else {
            String::new()
        };
    }
    r.fields
        .iter()
        .map(|f| format!("{}={}", f.name, f.extract(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use pynq_mqtt_bus::{BusError, IrqWait};
    use pynq_mqtt_regs::offset;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Registers read back their offset; every read is recorded.
    struct Recorder(Mutex<Vec<u32>>);

    impl Bus for Recorder {
        fn read32(&self, off: u32) -> Result<u32, BusError> {
            self.0.lock().unwrap().push(off);
            Ok(match off {
                offset::ID => regs::ID_VALUE,
                offset::VERSION => 0x0002_0000,
                offset::PARAMS => 0x0009_0404,
                o => o,
            })
        }
        fn write32(&self, _: u32, _: u32) -> Result<(), BusError> {
            panic!("regs writes nothing")
        }
        fn wait_irq(&self, _: Duration) -> Result<IrqWait, BusError> {
            panic!("regs waits for nothing")
        }
        fn rearm_irq(&self) -> Result<(), BusError> {
            panic!("regs re-arms nothing")
        }
        fn wake_waiter(&self) {}
        fn describe(&self) -> String {
            "recorder".into()
        }
    }

    #[test]
    fn every_register_is_shown_and_pops_are_never_read() {
        let bus = Recorder(Mutex::new(Vec::new()));
        let text = render(&bus, regs::ID_VALUE).unwrap();
        for r in REGISTERS {
            assert!(
                text.lines()
                    .any(|l| l.split_whitespace().nth(1) == Some(r.name)),
                "{} missing:\n{text}",
                r.name
            );
        }
        let read = bus.0.lock().unwrap().clone();
        for r in REGISTERS {
            let was_read = read.contains(&r.offset);
            assert_eq!(
                was_read,
                r.access.readable() && !r.access.read_has_side_effect(),
                "{} ({})",
                r.name,
                r.access.short()
            );
        }
        assert!(
            text.contains("N_INPUTS=4 N_LEDS=4 FIFO_DEPTH_LOG2=9"),
            "{text}"
        );
        assert!(text.contains("MINOR=2 MAJOR=0"), "{text}");
        assert!(text.contains("0x504d5154  \"PMQT\""), "{text}");
        assert!(text.lines().all(|l| l == l.trim_end()), "{text}");
        let pop = text.lines().find(|l| l.contains("EVT_POP")).unwrap();
        assert!(pop.contains("not read"), "{pop}");
        let set = text.lines().find(|l| l.contains("LED_SET")).unwrap();
        assert!(set.contains(" - ") && set.contains("write only"), "{set}");
    }
}
