"""cocotb bench for hdl/models/axi_gpio_model.v, our behavioural model of AXI GPIO (PG144's
register map), in the shapes PYNQ's base overlay uses: inputs with interrupt (btns_gpio,
switches_gpio), outputs without (leds_gpio, rgbleds_gpio), and a mixed channel whose
GPIO_TRI is writable.

Every access goes through a raw AXI4-Lite driver (AW before W, W before AW, together; B and
R held off) under the AxilMonitor. Checked: GPIO_DATA and GPIO_TRI per shape, the two-flop
input path, the interrupt on any input change (GIER bit 31, IP IER bit 0, IP ISR bit 0
toggle-on-write), and the two software rules the daemon follows: write back only the
status bits read as 1, and clear the status before reading the data.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from model_tb import LEADS, ModelTB, run_model

DATA, TRI, GIER, ISR, IER = 0x000, 0x004, 0x11C, 0x120, 0x128
GIE = 0x8000_0000

SHAPES = {
    "inputs_irq": {"GPIO_WIDTH": 4, "ALL_INPUTS": 1, "ALL_OUTPUTS": 0, "INTERRUPT_PRESENT": 1},
    "outputs": {"GPIO_WIDTH": 6, "ALL_INPUTS": 0, "ALL_OUTPUTS": 1, "INTERRUPT_PRESENT": 0},
    "mixed_irq": {"GPIO_WIDTH": 8, "ALL_INPUTS": 0, "ALL_OUTPUTS": 0, "INTERRUPT_PRESENT": 1},
}


class GpioTB(ModelTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.width = int(dut.GPIO_WIDTH.value)
        self.all_inputs = int(dut.ALL_INPUTS.value) != 0
        self.all_outputs = int(dut.ALL_OUTPUTS.value) != 0
        self.has_irq = int(dut.INTERRUPT_PRESENT.value) != 0
        self.mask = (1 << self.width) - 1
        self.pins = 0
        dut.gpio_io_i.value = 0

    async def set_pins(self, value: int) -> None:
        await FallingEdge(self.clk)
        self.pins = value & self.mask
        self.dut.gpio_io_i.value = self.pins

    async def settle(self) -> None:
        # two synchronizer flops, the status flop and the irq flop
        await ClockCycles(self.clk, 5)

    def irq(self) -> int:
        return int(self.dut.ip2intc_irpt.value)

    async def enable_irq(self) -> None:
        await self.write(GIER, GIE)
        await self.write(IER, 1)


def needs(tb: GpioTB, inputs: bool = False, irq: bool = False) -> bool:
    return (not inputs or not tb.all_outputs) and (not irq or tb.has_irq)


@cocotb.test()
async def test_data_and_tri(dut):
    """GPIO_DATA and GPIO_TRI in every write order, per shape; unmapped words read 0."""
    tb = GpioTB(dut)
    await tb.reset()
    tri_reset = tb.mask if not tb.all_outputs else 0
    assert await tb.read(TRI) == tri_reset
    for lead in LEADS:
        for _ in range(3):
            pins = random.getrandbits(tb.width)
            await tb.set_pins(pins)
            await tb.settle()
            tri = await tb.read(TRI)
            value = random.getrandbits(32)
            await tb.write(DATA, value, lead=lead)
            out = value & tb.mask
            assert int(dut.gpio_io_o.value) == out, f"lead {lead}: gpio_io_o"
            got = await tb.read(DATA)
            assert got == (pins & tri) | (out & ~tri & tb.mask), (
                f"lead {lead}: DATA {got:#x} for pins {pins:#x}, out {out:#x}, tri {tri:#x}")
            new_tri = random.getrandbits(32)
            await tb.write(TRI, new_tri, lead=lead)
            want_tri = (tb.mask if tb.all_inputs else 0 if tb.all_outputs
                        else new_tri & tb.mask)
            assert await tb.read(TRI) == want_tri, f"lead {lead}: TRI"
            assert int(dut.gpio_io_t.value) == want_tri
    for addr in (0x008, 0x00C, 0x118, 0x124, 0x12C, 0x1FC):
        await tb.write(addr, 0xFFFF_FFFF)
        assert await tb.read(addr) == 0, f"unmapped {addr:#x} reads non-zero"
    if not tb.has_irq:
        for addr in (GIER, ISR, IER):
            await tb.write(addr, 0xFFFF_FFFF)
            assert await tb.read(addr) == 0, f"{addr:#x} without interrupt reads non-zero"
        assert tb.irq() == 0


@cocotb.test()
async def test_interrupt_registers(dut):
    """GIER is bit 31 only, IER bit 0 only; both written in every order."""
    tb = GpioTB(dut)
    await tb.reset()
    if not needs(tb, irq=True):
        return
    for reg in (GIER, ISR, IER):
        assert await tb.read(reg) == 0, f"{reg:#x} after reset"
    for lead in LEADS:
        await tb.write(GIER, 0xFFFF_FFFF, lead=lead)
        assert await tb.read(GIER) == GIE
        await tb.write(GIER, 0x7FFF_FFFF, lead=lead)
        assert await tb.read(GIER) == 0
        await tb.write(IER, 0xFFFF_FFFF, lead=lead)
        assert await tb.read(IER) == 1
        await tb.write(IER, 0xFFFF_FFFE, lead=lead)
        assert await tb.read(IER) == 0


@cocotb.test()
async def test_input_synchronizer(dut):
    """A pin change reaches GPIO_DATA through two flops: not at the first edge, by the third."""
    tb = GpioTB(dut)
    await tb.reset()
    if not needs(tb, inputs=True):
        return
    await tb.write(TRI, 0xFFFF_FFFF)
    core = dut.core
    for _ in range(4):
        pins = tb.pins ^ (1 + random.getrandbits(tb.width - 1))
        await tb.set_pins(pins)
        await ClockCycles(tb.clk, 1)
        await FallingEdge(tb.clk)
        assert int(core.sync_reg.value) != pins, "the input skipped a flop"
        await ClockCycles(tb.clk, 1)
        await FallingEdge(tb.clk)
        assert int(core.sync_reg.value) == pins
        assert await tb.read(DATA) == pins


@cocotb.test()
async def test_interrupt_on_any_change(dut):
    """Press and release each raise the status; irq needs GIER and IER; the status is
    recorded even while disabled."""
    tb = GpioTB(dut)
    await tb.reset()
    if not needs(tb, inputs=True, irq=True):
        return
    await tb.write(TRI, 0xFFFF_FFFF)
    for bit in range(tb.width):
        for level in (1, 0):  # press, then release
            await tb.set_pins(tb.pins ^ (1 << bit) if level else tb.pins & ~(1 << bit))
            await tb.settle()
            assert await tb.read(ISR) == 1, f"bit {bit} -> {level}: no status"
            assert tb.irq() == 0, "irq while GIER and IER are off"
            await tb.write(ISR, 1)
            assert await tb.read(ISR) == 0
    # recorded while disabled, raised when enabled
    await tb.set_pins(tb.pins ^ 1)
    await tb.settle()
    await tb.write(IER, 1)
    await tb.settle()
    assert tb.irq() == 0, "irq with GIER off"
    await tb.write(GIER, GIE)
    await tb.settle()
    assert tb.irq() == 1, "status pending, GIER and IER on, no irq"
    await tb.write(IER, 0)
    await tb.settle()
    assert tb.irq() == 0, "irq with IER off"
    await tb.write(IER, 1)
    await tb.settle()
    assert tb.irq() == 1
    await tb.write(ISR, 1)
    await tb.settle()
    assert tb.irq() == 0, "irq stays after the status is cleared"
    # no change, no interrupt
    await ClockCycles(tb.clk, 20)
    assert tb.irq() == 0 and await tb.read(ISR) == 0


@cocotb.test()
async def test_isr_toggle_on_write(dut):
    """Writing 1 flips the status bit, writing 0 leaves it: a blind write of 1 to a clear
    status raises a spurious interrupt, so software writes back only the bits read as 1."""
    tb = GpioTB(dut)
    await tb.reset()
    if not needs(tb, irq=True):
        return
    await tb.enable_irq()
    for lead in LEADS:
        assert await tb.read(ISR) == 0
        await tb.write(ISR, 0xFFFF_FFFE, lead=lead)  # bit 0 clear: nothing changes
        assert await tb.read(ISR) == 0
        await tb.write(ISR, 1, lead=lead)  # a blind "clear" of a clear status sets it
        await tb.settle()
        assert await tb.read(ISR) == 1, "toggle-on-write did not set a clear bit"
        assert tb.irq() == 1, "a set status raised no irq"
        status = await tb.read(ISR)
        await tb.write(ISR, status, lead=lead)  # the rule: write back what read as 1
        await tb.settle()
        assert await tb.read(ISR) == 0 and tb.irq() == 0


@cocotb.test()
async def test_clear_status_before_reading_data(dut):
    """Clear, then read: a change between the two raises a new interrupt. Read, then clear:
    the same change is lost (the status ends clear, the data read is stale)."""
    tb = GpioTB(dut)
    await tb.reset()
    if not needs(tb, inputs=True, irq=True):
        return
    await tb.write(TRI, 0xFFFF_FFFF)
    await tb.enable_irq()

    # the daemon's order
    await tb.set_pins(0b1)  # press
    await tb.settle()
    assert tb.irq() == 1
    status = await tb.read(ISR)
    assert status == 1
    await tb.write(ISR, status)  # clear first
    await tb.set_pins(0b0)  # release before the data read
    await tb.settle()
    data = await tb.read(DATA)
    assert data == 0
    assert await tb.read(ISR) == 1 and tb.irq() == 1, "the release raised no new interrupt"
    await tb.write(ISR, 1)
    await tb.settle()
    assert tb.irq() == 0

    # the other order, to show what the rule guards against
    await tb.set_pins(0b1)  # press
    await tb.settle()
    data = await tb.read(DATA)  # read first
    assert data == 1
    await tb.set_pins(0b0)  # release before the clear
    await tb.settle()
    status = await tb.read(ISR)
    await tb.write(ISR, status)  # clear last
    await tb.settle()
    assert await tb.read(ISR) == 0 and tb.irq() == 0
    assert data != tb.pins, "expected the read-then-clear order to lose the release"


async def record_cycles(tb: GpioTB, log: dict[str, list[int]], stop: list[bool]) -> None:
    """Cycles at which the core saw a write strobe to ISR and a synchronized input change."""
    core = tb.dut.core
    cyc = 0
    while not stop:
        await RisingEdge(tb.clk)  # values before the edge: what the core acts on
        cyc += 1
        if int(core.reg_wr_en.value) and int(core.reg_wr_addr.value) == ISR:
            log["clear"].append(cyc)
        if int(core.input_changed.value):
            log["change"].append(cyc)


@cocotb.test()
async def test_change_around_clear(dut):
    """A change in the clock of the clearing write, or after it, leaves the status set; a
    change before it is folded into the status that the write then clears."""
    tb = GpioTB(dut)
    await tb.reset()
    if not needs(tb, inputs=True, irq=True):
        return
    await tb.write(TRI, 0xFFFF_FFFF)
    await tb.enable_irq()
    seen_same_clock = False
    for delta in range(-6, 7):
        await tb.set_pins(1)  # press: status set
        await tb.settle()
        assert await tb.read(ISR) == 1
        log: dict[str, list[int]] = {"clear": [], "change": []}
        stop: list[bool] = []
        recorder = cocotb.start_soon(record_cycles(tb, log, stop))
        if delta < 0:
            await tb.set_pins(0)
            await ClockCycles(tb.clk, -delta)
            await tb.write(ISR, 1, lead=0, b_delay=0)
        else:
            clear = cocotb.start_soon(tb.write(ISR, 1, lead=0, b_delay=0))
            await ClockCycles(tb.clk, delta)
            await tb.set_pins(0)
            await clear
        await tb.settle()
        stop.append(True)
        await recorder
        assert len(log["clear"]) == 1 and len(log["change"]) == 1, log
        clear_at, change_at = log["clear"][0], log["change"][0]
        seen_same_clock |= clear_at == change_at
        isr = await tb.read(ISR)
        if change_at >= clear_at:
            assert isr == 1 and tb.irq() == 1, (
                f"release at cycle {change_at}, clear at {clear_at}: the release was lost")
            await tb.write(ISR, 1)
        else:
            assert isr == 0, f"release at {change_at} before the clear at {clear_at}"
        await tb.settle()
        assert await tb.read(ISR) == 0
    assert seen_same_clock, "no sweep put the change in the clock of the clear"


@pytest.mark.parametrize("shape", list(SHAPES))
def test_axi_gpio_model_runner(shape: str) -> None:
    run_model("axi_gpio_model", "test_model_axi_gpio", shape, SHAPES[shape])
