"""cocotb bench for hdl/models/axi_intc_model.v, our behavioural model of AXI INTC (PG099's
register map), with level inputs as the base overlay's system_interrupts has, and with a
mix of edge and level inputs.

Every access goes through a raw AXI4-Lite driver (AW before W, W before AW, together; B and
R held off) under the AxilMonitor. Checked: IER, SIE and CIE (set and clear only the bits
written as 1), IAR (clears only the bits written as 1), IPR = ISR & IER, IVR, MER (ME gates
irq; HIE enables the inputs, disables software ISR writes, and sticks until reset),
level inputs held until acknowledged and recorded again if still high, edge inputs, and
that servicing one input as PYNQ does (CIE, then IAR) never touches another input's
enable or status.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles, FallingEdge

from model_tb import LEADS, ModelTB, run_model

ISR, IPR, IER, IAR, SIE, CIE, IVR, MER = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x14, 0x18, 0x1C
ME, HIE = 1, 2

SHAPES = {
    "level16": {"NUM_INTR": 16, "KIND_OF_INTR": 0},
    "mixed8": {"NUM_INTR": 8, "KIND_OF_INTR": 0xF0},
}


class IntcTB(ModelTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.n = int(dut.NUM_INTR.value)
        self.edge = int(dut.KIND_OF_INTR.value) & ((1 << self.n) - 1)
        self.mask = (1 << self.n) - 1
        self.inputs = 0
        dut.intr.value = 0

    async def set_inputs(self, value: int) -> None:
        await FallingEdge(self.clk)
        self.inputs = value & self.mask
        self.dut.intr.value = self.inputs

    async def pulse(self, bits: int) -> None:
        await self.set_inputs(self.inputs | bits)
        await self.set_inputs(self.inputs & ~bits)

    async def settle(self) -> None:
        await ClockCycles(self.clk, 3)

    def irq(self) -> int:
        return int(self.dut.irq.value)

    def levels(self) -> list[int]:
        return [k for k in range(self.n) if not (self.edge >> k) & 1]

    def edges(self) -> list[int]:
        return [k for k in range(self.n) if (self.edge >> k) & 1]


def lowest(bits: int) -> int:
    return (bits & -bits).bit_length() - 1 if bits else 0xFFFF_FFFF


@cocotb.test()
async def test_enable_registers(dut):
    """IER read/write; SIE and CIE set and clear only the bits written as 1; the
    write-only registers read 0; MER's HIE sticks; unmapped words read 0."""
    tb = IntcTB(dut)
    await tb.reset()
    for reg in (ISR, IPR, IER, IAR, SIE, CIE, MER):
        assert await tb.read(reg) == 0, f"{reg:#x} after reset"
    assert await tb.read(IVR) == 0xFFFF_FFFF
    ier = 0
    for lead in LEADS:
        for _ in range(4):
            value = random.getrandbits(32)
            op = random.choice((IER, SIE, CIE))
            await tb.write(op, value, lead=lead)
            v = value & tb.mask
            ier = v if op == IER else ier | v if op == SIE else ier & ~v
            assert await tb.read(IER) == ier, f"lead {lead}: IER after {op:#x} <- {value:#x}"
            for wo in (IAR, SIE, CIE):
                assert await tb.read(wo) == 0, f"write-only {wo:#x} reads non-zero"
    await tb.write(MER, ME, lead=-1)
    assert await tb.read(MER) == ME
    await tb.write(MER, HIE, lead=1)
    assert await tb.read(MER) == HIE
    await tb.write(MER, 0)
    assert await tb.read(MER) == HIE, "HIE cleared by software"
    await tb.write(MER, 0xFFFF_FFFF)
    assert await tb.read(MER) == ME | HIE
    for addr in (0x20, 0x100, 0x1FC):
        await tb.write(addr, 0xFFFF_FFFF)
        assert await tb.read(addr) == 0, f"unmapped {addr:#x}"
    await tb.reset()
    assert await tb.read(MER) == 0, "HIE survived reset"


@cocotb.test()
async def test_hie_gates_inputs_and_software_writes(dut):
    """Before HIE the inputs are ignored and ISR writes set bits; after, the reverse."""
    tb = IntcTB(dut)
    await tb.reset()
    await tb.set_inputs(tb.mask)
    await tb.settle()
    assert await tb.read(ISR) == 0, "inputs recorded before HIE"
    await tb.set_inputs(0)
    soft = random.getrandbits(tb.n) | 1
    await tb.write(ISR, soft)
    assert await tb.read(ISR) == soft, "software interrupt not recorded before HIE"
    await tb.write(IER, tb.mask)
    await tb.write(MER, ME)
    await tb.settle()
    assert tb.irq() == 1, "software interrupt raised no irq"
    assert await tb.read(IVR) == lowest(soft)
    await tb.write(IAR, tb.mask)
    await tb.settle()
    assert await tb.read(ISR) == 0 and tb.irq() == 0
    await tb.write(MER, ME | HIE)
    await tb.write(ISR, tb.mask)
    assert await tb.read(ISR) == 0, "ISR written after HIE"


@cocotb.test()
async def test_level_inputs(dut):
    """A level input is recorded whatever IER says, held after the input drops until
    acknowledged, and recorded again if still high at its acknowledge; IPR = ISR & IER;
    irq = ME & any pending; IVR names the lowest pending."""
    tb = IntcTB(dut)
    await tb.reset()
    await tb.write(MER, HIE)
    for k in tb.levels():
        bit = 1 << k
        await tb.set_inputs(bit)
        await tb.settle()
        assert await tb.read(ISR) == bit, f"input {k} not recorded"
        assert await tb.read(IPR) == 0 and tb.irq() == 0, "pending while disabled"
        await tb.write(SIE, bit)
        await tb.settle()
        assert await tb.read(IPR) == bit
        assert await tb.read(IVR) == k
        assert tb.irq() == 0, "irq with ME off"
        await tb.write(MER, ME | HIE)
        await tb.settle()
        assert tb.irq() == 1
        await tb.set_inputs(0)  # the source drops: still held
        await tb.settle()
        assert await tb.read(ISR) == bit and tb.irq() == 1, f"input {k} not held"
        await tb.write(IAR, bit)
        await tb.settle()
        assert await tb.read(ISR) == 0 and tb.irq() == 0, f"input {k} not acknowledged"
        # acknowledged while the source is still high: recorded again
        await tb.set_inputs(bit)
        await tb.settle()
        await tb.write(IAR, bit)
        await tb.settle()
        assert await tb.read(ISR) == bit and tb.irq() == 1, f"input {k} lost while high"
        await tb.set_inputs(0)
        await tb.write(IAR, bit)
        await tb.write(CIE, bit)
        await tb.write(MER, HIE)
        await tb.settle()
        assert await tb.read(ISR) == 0 and tb.irq() == 0
    # several at once: IVR names the lowest enabled pending one
    levels = sum(1 << k for k in tb.levels())
    raised = random.getrandbits(tb.n) & levels | (1 << tb.levels()[-1])
    await tb.set_inputs(raised)
    await tb.settle()
    enabled = random.getrandbits(tb.n) | (1 << tb.levels()[-1])
    await tb.write(IER, enabled)
    assert await tb.read(IPR) == raised & enabled & tb.mask
    assert await tb.read(IVR) == lowest(raised & enabled & tb.mask)


@cocotb.test()
async def test_edge_inputs(dut):
    """An edge input records a one-clock pulse, and a level still high after its
    acknowledge is not recorded again."""
    tb = IntcTB(dut)
    await tb.reset()
    if not tb.edges():
        return
    await tb.write(MER, ME | HIE)
    for k in tb.edges():
        bit = 1 << k
        await tb.write(SIE, bit)
        await tb.pulse(bit)
        await tb.settle()
        assert await tb.read(ISR) == bit and tb.irq() == 1, f"edge input {k}: pulse lost"
        await tb.write(IAR, bit)
        await tb.settle()
        assert await tb.read(ISR) == 0 and tb.irq() == 0
        await tb.set_inputs(bit)
        await tb.settle()
        await tb.write(IAR, bit)
        await tb.settle()
        assert await tb.read(ISR) == 0, f"edge input {k} recorded a level"
        await tb.set_inputs(0)
        await tb.write(CIE, bit)


@cocotb.test()
async def test_servicing_one_input_leaves_the_others(dut):
    """PYNQ's service of input a (CIE a, then IAR a) and our daemon's (IAR a only) leave
    input b's enable and status alone; so does SIE of a."""
    tb = IntcTB(dut)
    await tb.reset()
    await tb.write(MER, ME | HIE)
    levels = tb.levels()
    for _ in range(6):
        a, b = random.sample(levels, 2)
        bit_a, bit_b = 1 << a, 1 << b
        others = random.getrandbits(tb.n) & ~(bit_a | bit_b) & tb.mask
        await tb.write(IER, others | bit_b)
        await tb.write(SIE, bit_a)
        assert await tb.read(IER) == others | bit_a | bit_b, "SIE disturbed other enables"
        await tb.pulse(bit_a | bit_b)
        await tb.settle()
        assert await tb.read(IPR) == bit_a | bit_b
        pynq_style = random.random() < 0.5
        if pynq_style:
            await tb.write(CIE, bit_a)
        await tb.write(IAR, bit_a)
        await tb.settle()
        want_ier = others | bit_b | (0 if pynq_style else bit_a)
        assert await tb.read(IER) == want_ier, (
            f"servicing input {a} changed the enables: {await tb.read(IER):#x}")
        assert await tb.read(ISR) == bit_b, f"servicing input {a} touched input {b}"
        assert tb.irq() == 1, f"input {b} still pending, irq dropped"
        await tb.write(IAR, bit_b)
        await tb.settle()
        assert await tb.read(ISR) == 0 and tb.irq() == 0


@cocotb.test()
async def test_master_enable(dut):
    """ME alone gates irq: pending stays pending while ME is off."""
    tb = IntcTB(dut)
    await tb.reset()
    await tb.write(MER, HIE)
    k = tb.levels()[0]
    await tb.write(SIE, 1 << k)
    await tb.pulse(1 << k)
    await tb.settle()
    for _ in range(3):
        await tb.write(MER, HIE)
        await tb.settle()
        assert tb.irq() == 0 and await tb.read(IPR) == 1 << k
        await tb.write(MER, ME | HIE)
        await tb.settle()
        assert tb.irq() == 1


@pytest.mark.parametrize("shape", list(SHAPES))
def test_axi_intc_model_runner(shape: str) -> None:
    run_model("axi_intc_model", "test_model_axi_intc", shape, SHAPES[shape])
