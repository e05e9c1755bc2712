//! Registers as typed handles: each register's offset is bound to the type of its
//! value and to how it may be accessed, so that a wrong pairing does not compile.
//!
//! The generated constants (`GEN_CTRL: Reg<GenCtrl, Rw>`, `EVT_POP: Reg<EvtPop,
//! ReadPops>`, `LED_PWM: RegArray<LedPwm, Rw, 8>`) are read and written through
//! [`RegBus`], which every [`Bus`] has. The raw `read32`/`write32` stay on the bus
//! for its backends and for tools that walk the register table.

use std::marker::PhantomData;

use pynq_mqtt_bus::{Bus, BusError};

/// The value of a register: a word with named fields, or a plain `u32`.
pub trait RegValue: Copy {
    fn from_bits(bits: u32) -> Self;
    fn bits(self) -> u32;
}

impl RegValue for u32 {
    #[inline]
    fn from_bits(bits: u32) -> Self {
        bits
    }
    #[inline]
    fn bits(self) -> u32 {
        self
    }
}

/// Access kinds whose read returns the register's value.
pub trait Readable {}
/// Access kinds that take a written value.
pub trait Writable {}

/// Read only, no side effect.
#[derive(Debug)]
pub enum Ro {}
/// Read and write.
#[derive(Debug)]
pub enum Rw {}
/// Write only: a write acts, reads return 0 (so reading is refused).
#[derive(Debug)]
pub enum Wo {}
/// Readable; bits written with 1 are cleared (sticky status).
#[derive(Debug)]
pub enum W1c {}
/// Reading pops: every read changes the hardware. Never read it for display.
#[derive(Debug)]
pub enum ReadPops {}
/// Readable; a write subtracts the value written.
#[derive(Debug)]
pub enum WSub {}

impl Readable for Ro {}
impl Readable for Rw {}
impl Readable for W1c {}
impl Readable for ReadPops {}
impl Readable for WSub {}
impl Writable for Rw {}
impl Writable for Wo {}
impl Writable for W1c {}
impl Writable for WSub {}

/// One register: its offset, the type of its value `T` and its access `A`.
pub struct Reg<T, A> {
    name: &'static str,
    offset: u32,
    // fn() -> ..: no ownership of a T or A, and Send/Sync whatever they are
    _kind: PhantomData<fn() -> (T, A)>,
}

impl<T, A> Reg<T, A> {
    /// Only the generated map binds an offset to a type.
    pub(crate) const fn new(name: &'static str, offset: u32) -> Self {
        Self {
            name,
            offset,
            _kind: PhantomData,
        }
    }

    /// Byte offset in the register window.
    pub const fn offset(self) -> u32 {
        self.offset
    }

    /// Name in the register map (`LED_PWM3` for an array element).
    pub const fn name(self) -> &'static str {
        self.name
    }
}

impl<T, A> Clone for Reg<T, A> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T, A> Copy for Reg<T, A> {}

impl<T, A> std::fmt::Debug for Reg<T, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}@{:#04x}", self.name, self.offset)
    }
}

/// `N` registers of one type at `offset + k * stride`.
pub struct RegArray<T, A, const N: usize> {
    names: [&'static str; N],
    offset: u32,
    stride: u32,
    _kind: PhantomData<fn() -> (T, A)>,
}

impl<T, A, const N: usize> RegArray<T, A, N> {
    pub(crate) const fn new(names: [&'static str; N], offset: u32, stride: u32) -> Self {
        Self {
            names,
            offset,
            stride,
            _kind: PhantomData,
        }
    }

    /// Number of elements.
    pub const fn len(&self) -> usize {
        N
    }

    /// Never true: an array has at least one element.
    pub const fn is_empty(&self) -> bool {
        N == 0
    }

    /// Element `k`, or `None` past the end.
    pub const fn get(&self, k: usize) -> Option<Reg<T, A>> {
        if k < N {
            Some(Reg::new(
                self.names[k],
                self.offset + k as u32 * self.stride,
            ))
        } else {
            None
        }
    }

    /// Element `k`. Panics past the end, as indexing does.
    pub const fn at(&self, k: usize) -> Reg<T, A> {
        match self.get(k) {
            Some(r) => r,
            None => panic!("register array index out of range"),
        }
    }
}

/// Typed register access on any [`Bus`]: the value type and the access kind come
/// from the register, so a write of another register's fields, a write to a
/// read-only register or a read of a write-only one does not compile.
///
/// ```
/// use pynq_mqtt_bus::{Bus, BusError};
/// use pynq_mqtt_regs::{self as regs, GenCtrl, IrqStatus, RegBus};
///
/// fn start(bus: &dyn Bus) -> Result<bool, BusError> {
///     bus.write(regs::GEN_COUNT, 10)?;
///     bus.write(regs::GEN_CTRL, GenCtrl::default().with_enable(true))?;
///     bus.write(regs::IRQ_STATUS, IrqStatus::default().with_gen_done(true))?;
///     bus.write(regs::LED_PWM.at(1), regs::LedPwm::default().with_led0(128))?;
///     Ok(bus.read(regs::EVT_POP)?.valid() && bus.read(regs::ID)? == regs::ID_VALUE)
/// }
/// ```
///
/// A register read only takes no write:
/// ```compile_fail
/// # use pynq_mqtt_regs::{self as regs, RegBus};
/// # fn f(bus: &dyn pynq_mqtt_bus::Bus) {
/// bus.write(regs::ID, 0x504D_5154);
/// # }
/// ```
/// nor does the pop register:
/// ```compile_fail
/// # use pynq_mqtt_regs::{self as regs, EvtPop, RegBus};
/// # fn f(bus: &dyn pynq_mqtt_bus::Bus) {
/// bus.write(regs::EVT_POP, EvtPop::default());
/// # }
/// ```
/// A register takes only its own field type:
/// ```compile_fail
/// # use pynq_mqtt_regs::{self as regs, IrqEnable, RegBus};
/// # fn f(bus: &dyn pynq_mqtt_bus::Bus) {
/// bus.write(regs::GEN_CTRL, IrqEnable::default().with_event(true));
/// # }
/// ```
/// and a raw word is not a field type either:
/// ```compile_fail
/// # use pynq_mqtt_regs::{self as regs, RegBus};
/// # fn f(bus: &dyn pynq_mqtt_bus::Bus) {
/// bus.write(regs::IRQ_ENABLE, 1u32);
/// # }
/// ```
/// A write-only register cannot be read:
/// ```compile_fail
/// # use pynq_mqtt_regs::{self as regs, RegBus};
/// # fn f(bus: &dyn pynq_mqtt_bus::Bus) {
/// let _ = bus.read(regs::LED_SET);
/// # }
/// ```
/// A read gives the register's own type:
/// ```compile_fail
/// # use pynq_mqtt_regs::{self as regs, EvtPop, RegBus};
/// # fn f(bus: &dyn pynq_mqtt_bus::Bus) {
/// let _: EvtPop = bus.read(regs::FIFO_LEVEL).unwrap();
/// # }
/// ```
pub trait RegBus: Bus {
    /// Reads `reg` (one bus transaction; for [`ReadPops`] it pops).
    #[inline]
    fn read<T: RegValue, A: Readable>(&self, reg: Reg<T, A>) -> Result<T, BusError> {
        self.read32(reg.offset).map(T::from_bits)
    }

    /// Writes `value` to `reg` (one bus transaction).
    #[inline]
    fn write<T: RegValue, A: Writable>(&self, reg: Reg<T, A>, value: T) -> Result<(), BusError> {
        self.write32(reg.offset, value.bits())
    }
}

impl<B: Bus + ?Sized> RegBus for B {}
