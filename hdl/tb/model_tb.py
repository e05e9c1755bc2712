"""Shared pieces of the benches of the behavioural models in hdl/models (AXI GPIO, AXI INTC
and the base overlay built from them): a raw AXI4-Lite driver whose writes present AW
before W, W before AW, or both together, with B and R held off for a while, under the
AxilMonitor's protocol checks; and the runner that builds a model with Icarus.
"""

from __future__ import annotations

import random
from pathlib import Path

from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge

from axil_monitor import AxilMonitor
from pmq_runner import ROOT, run_bench

MODELS_DIR = ROOT / "hdl" / "models"

# how AW leads W in a write: positive = AW that many cycles first, negative = W first
LEADS = [-3, -1, 0, 1, 3]


def model_sources() -> list[Path]:
    return sorted(MODELS_DIR.glob("*.v"))


def run_model(toplevel: str, test_module: str, name: str, parameters: dict[str, int]) -> None:
    run_bench(toplevel, test_module, name, parameters, extra_sources=model_sources())


class ModelTB:
    """Clock, reset and a one-transaction-at-a-time raw AXI4-Lite master on s_axi_*."""

    def __init__(self, dut):
        self.dut = dut
        self.clk = dut.s_axi_aclk
        dut.s_axi_aresetn.value = 0
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready", "awaddr", "wdata",
                     "wstrb", "araddr"):
            getattr(dut, f"s_axi_{name}").value = 0
        Clock(self.clk, 10, unit="ns").start()
        self.monitor = AxilMonitor(dut)

    async def reset(self) -> None:
        self.dut.s_axi_aresetn.value = 0
        await ClockCycles(self.clk, 5)
        self.dut.s_axi_aresetn.value = 1
        await ClockCycles(self.clk, 2)

    async def _finish(self) -> None:
        # the handshake happens at this rising edge; drop everything after it
        await RisingEdge(self.clk)
        await FallingEdge(self.clk)
        d = self.dut
        d.s_axi_awvalid.value = 0
        d.s_axi_wvalid.value = 0
        d.s_axi_bready.value = 0
        d.s_axi_arvalid.value = 0
        d.s_axi_rready.value = 0

    async def write(self, addr: int, data: int, lead: int | None = None,
                    b_delay: int | None = None) -> None:
        """One write; lead and b_delay (cycles BREADY stays low under BVALID) random if
        not given."""
        if lead is None:
            lead = random.choice(LEADS)
        if b_delay is None:
            b_delay = random.choice([0, 0, 1, 4])
        d = self.dut
        aw_at, w_at = (0, lead) if lead >= 0 else (-lead, 0)
        aw_done = w_done = False
        b_seen = 0
        for cyc in range(100):
            await FallingEdge(self.clk)
            d.s_axi_awvalid.value = int(not aw_done and cyc >= aw_at)
            d.s_axi_awaddr.value = addr
            d.s_axi_wvalid.value = int(not w_done and cyc >= w_at)
            d.s_axi_wdata.value = data
            d.s_axi_wstrb.value = 0xF
            bvalid = int(d.s_axi_bvalid.value)
            d.s_axi_bready.value = int(bvalid and b_seen >= b_delay)
            b_seen += bvalid
            await ReadOnly()
            if int(d.s_axi_awvalid.value) and int(d.s_axi_awready.value):
                aw_done = True
            if int(d.s_axi_wvalid.value) and int(d.s_axi_wready.value):
                w_done = True
            if int(d.s_axi_bvalid.value) and int(d.s_axi_bready.value):
                assert aw_done and w_done, "B before both AW and W were accepted"
                assert int(d.s_axi_bresp.value) == 0, "BRESP not OKAY"
                await self._finish()
                return
        raise AssertionError(f"write of {addr:#x} never completed")

    async def read(self, addr: int, r_delay: int | None = None) -> int:
        if r_delay is None:
            r_delay = random.choice([0, 0, 1, 4])
        d = self.dut
        ar_done = False
        r_seen = 0
        for _ in range(100):
            await FallingEdge(self.clk)
            d.s_axi_arvalid.value = int(not ar_done)
            d.s_axi_araddr.value = addr
            rvalid = int(d.s_axi_rvalid.value)
            d.s_axi_rready.value = int(rvalid and r_seen >= r_delay)
            r_seen += rvalid
            await ReadOnly()
            if int(d.s_axi_arvalid.value) and int(d.s_axi_arready.value):
                ar_done = True
            if int(d.s_axi_rvalid.value) and int(d.s_axi_rready.value):
                assert int(d.s_axi_rresp.value) == 0, "RRESP not OKAY"
                value = int(d.s_axi_rdata.value)
                await self._finish()
                return value
        raise AssertionError(f"read of {addr:#x} never completed")
