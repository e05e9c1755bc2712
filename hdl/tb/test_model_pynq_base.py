"""cocotb bench for hdl/models/pynq_base_model.v, the base overlay's GPIO blocks and
system_interrupts (our models) at their PYNQ addresses, once per board layout.

A button press, set up and serviced as the daemon does it (btns_gpio GIER and IER, the
controller's SIE for the board's button bit and MER = ME | HIE; then clear the GPIO status,
read the data, acknowledge the controller), raises irq through the board's button bit and
no other: enabling only the other board's bit leaves irq low. The switches likewise; the
LED windows drive their pins; a notebook's input on another bit is left pending.
"""

from __future__ import annotations

import cocotb
import pytest
from cocotb.triggers import ClockCycles, FallingEdge

from model_tb import ModelTB, run_model

SWITCHES, BTNS, RGBLEDS, LEDS, INTC = 0x4120_0000, 0x4121_0000, 0x4124_0000, 0x4125_0000, 0x4180_0000
DATA, GIER, ISR, IER = 0x000, 0x11C, 0x120, 0x128
I_ISR, I_IPR, I_IER, I_IAR, I_SIE, I_MER = 0x00, 0x04, 0x08, 0x0C, 0x10, 0x1C

# board: (buttons bit, switches bit), from each board's base.tcl
BITS = {"z1": (11, 12), "z2": (13, 14)}


class BaseTB(ModelTB):
    def __init__(self, dut):
        super().__init__(dut)
        self.z2 = int(dut.BOARD_Z2.value) != 0
        self.btn_bit, self.sw_bit = BITS["z2" if self.z2 else "z1"]
        self.other_btn_bit = BITS["z1" if self.z2 else "z2"][0]
        self.num_intr = 15 if self.z2 else 13  # Z1's controller has no bit 13 at all
        dut.btns.value = 0
        dut.sws.value = 0
        dut.intr_other.value = 0

    async def settle(self) -> None:
        await ClockCycles(self.clk, 8)

    def irq(self) -> int:
        return int(self.dut.irq.value)

    async def service(self, gpio: int, bit: int) -> int:
        """The daemon's order: clear the GPIO status (writing back what read as 1), then
        read its data, then acknowledge the controller's bit."""
        status = await self.read(gpio + ISR)
        assert status == 1, f"GPIO at {gpio:#x}: status {status:#x}"
        await self.write(gpio + ISR, status)
        data = await self.read(gpio + DATA)
        await self.write(INTC + I_IAR, 1 << bit)
        await self.settle()
        return data


@cocotb.test()
async def test_button_raises_irq_through_board_bit(dut):
    tb = BaseTB(dut)
    await tb.reset()
    # a notebook's interrupt on bit 0 (video), enabled by someone else
    await tb.write(INTC + I_SIE, 1)
    for gpio in (BTNS, SWITCHES):
        await tb.write(gpio + GIER, 0x8000_0000)
        await tb.write(gpio + IER, 1)
    await tb.write(INTC + I_SIE, 1 << tb.other_btn_bit)  # the other board's bit only
    await tb.write(INTC + I_MER, 3)
    await FallingEdge(tb.clk)
    dut.btns.value = 0b0100
    await tb.settle()
    assert tb.irq() == 0, (
        f"irq through bit {tb.other_btn_bit}, which is not this board's button bit")
    assert await tb.read(INTC + I_ISR) == 1 << tb.btn_bit, "press not on the board's bit"

    await tb.write(INTC + I_SIE, 1 << tb.btn_bit)
    await tb.settle()
    assert tb.irq() == 1, "press raised no irq"
    assert await tb.read(INTC + I_IPR) == 1 << tb.btn_bit
    assert await tb.service(BTNS, tb.btn_bit) == 0b0100
    assert tb.irq() == 0, "irq after the press was serviced"
    enables = (1 | 1 << tb.btn_bit | 1 << tb.other_btn_bit) & ((1 << tb.num_intr) - 1)
    assert await tb.read(INTC + I_IER) == enables

    # release: a second interrupt on the same bit
    await FallingEdge(tb.clk)
    dut.btns.value = 0
    await tb.settle()
    assert tb.irq() == 1 and await tb.read(INTC + I_IPR) == 1 << tb.btn_bit
    assert await tb.service(BTNS, tb.btn_bit) == 0
    assert tb.irq() == 0

    # a switch, on its own bit
    await tb.write(INTC + I_SIE, 1 << tb.sw_bit)
    await FallingEdge(tb.clk)
    dut.sws.value = 0b10
    await tb.settle()
    assert tb.irq() == 1 and await tb.read(INTC + I_IPR) == 1 << tb.sw_bit
    assert await tb.service(SWITCHES, tb.sw_bit) == 0b10
    assert tb.irq() == 0

    # the notebook's input fires; our acknowledges left its enable, so it is pending
    await FallingEdge(tb.clk)
    dut.intr_other.value = 1
    await tb.settle()
    dut.intr_other.value = 0
    assert tb.irq() == 1 and await tb.read(INTC + I_IPR) == 1


@cocotb.test()
async def test_led_windows(dut):
    tb = BaseTB(dut)
    await tb.reset()
    await tb.write(LEDS + DATA, 0b1010)
    await tb.write(RGBLEDS + DATA, 0b100_001)  # LD5 red, LD4 blue
    await ClockCycles(tb.clk, 2)
    assert int(dut.leds.value) == 0b1010
    assert int(dut.rgbleds.value) == 0b100_001
    assert await tb.read(LEDS + DATA) == 0b1010
    assert await tb.read(RGBLEDS + DATA) == 0b100_001
    assert await tb.read(0x4126_0000) == 0, "unmapped window reads non-zero"
    assert tb.irq() == 0


@pytest.mark.parametrize("board", ["z1", "z2"])
def test_pynq_base_model_runner(board: str) -> None:
    run_model("pynq_base_model", "test_model_pynq_base", board,
              {"BOARD_Z2": int(board == "z2")})
