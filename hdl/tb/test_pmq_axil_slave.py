"""cocotb bench for pmq_axil_slave, the AXI4-Lite front end, on the harness
tb_pmq_axil_slave.v (eight read/write words, POP: a read that counts its own read
strobes, WRITES: the number of write strobes, LAST_WRITE).

An AxilMonitor checks the protocol on every clock of every test (B and R held with
stable payload until READY, no response before or in the cycle of its request, never
more responses than requests). On top of that:
  - every write lands once, with its own address, data and byte strobes, in order;
  - every AR makes exactly one read strobe: reads of POP return 0, 1, 2, ... in order,
    however the reads are spaced and however long R is held;
  - every response is OKAY.
Traffic comes from cocotbext-axi (with and without random idle cycles on AW, W, AR and
backpressure on B, R) and from a raw driver whose five channels run independently, each
with random VALID/READY timing, so AW may lead W or W lead AW.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from axil_monitor import AxilMonitor
from pmq_runner import TB_DIR, run_bench

TIMEOUT_US = 2000  # simulated; a hung handshake fails instead of hanging

WORDS = [4 * k for k in range(8)]
POP, WRITES, LAST_WRITE = 0x20, 0x24, 0x28


def random_pause(probability: float):
    while True:
        yield random.random() < probability


def apply_strb(old: int, data: int, strb: int) -> int:
    for lane in range(4):
        if (strb >> lane) & 1:
            old = (old & ~(0xFF << 8 * lane)) | (data & (0xFF << 8 * lane))
    return old


class SlaveTB:
    def __init__(self, dut, stress: bool = False, master: bool = True):
        self.dut = dut
        self.clk = dut.s_axi_aclk
        dut.s_axi_aresetn.value = 0
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready", "awaddr", "wdata",
                     "wstrb", "araddr", "awprot", "arprot"):
            getattr(dut, f"s_axi_{name}").value = 0
        Clock(self.clk, 10, unit="ns").start()
        self.monitor = AxilMonitor(dut)
        self.axil = None
        if master:
            self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi"), self.clk,
                                      dut.s_axi_aresetn, reset_active_level=False)
            for logger in (self.axil.write_if.log, self.axil.read_if.log):
                logger.setLevel("WARNING")
            if stress:
                w, r = self.axil.write_if, self.axil.read_if
                for channel in (w.aw_channel, w.w_channel, r.ar_channel):
                    channel.set_pause_generator(random_pause(0.5))
                for channel in (w.b_channel, r.r_channel):
                    channel.set_pause_generator(random_pause(0.6))

    async def reset(self) -> None:
        self.dut.s_axi_aresetn.value = 0
        await ClockCycles(self.clk, 5)
        self.dut.s_axi_aresetn.value = 1
        await ClockCycles(self.clk, 2)

    async def read(self, addr: int) -> int:
        resp = await self.axil.read(addr, 4)
        assert resp.resp == AxiResp.OKAY
        return int.from_bytes(resp.data, "little")


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=[False, True])
async def test_concurrent_traffic(dut, stress):
    """Many writes and POP reads in flight together; then every word read back."""
    tb = SlaveTB(dut, stress)
    await tb.reset()
    model = {a: await tb.read(a) for a in WORDS}  # the words are not reset
    writes, reads = [], []
    n_writes = 0
    for _ in range(120):
        if random.random() < 0.5:
            addr = random.choice(WORDS)
            start = random.randrange(4)
            length = random.randint(1, 4 - start)
            data = random.randbytes(length)
            writes.append(tb.axil.init_write(addr + start, data))
            word = int.from_bytes(bytes(start) + data + bytes(4 - start - length), "little")
            model[addr] = apply_strb(model[addr], word, ((1 << length) - 1) << start)
            n_writes += 1
        else:
            reads.append(tb.axil.init_read(POP, 4))
        if random.random() < 0.3:
            await RisingEdge(tb.clk)
    for ev in writes + reads:
        await ev.wait()
    for ev in writes:
        assert ev.data.resp == AxiResp.OKAY
    got = [int.from_bytes(ev.data.data, "little") for ev in reads]
    assert all(ev.data.resp == AxiResp.OKAY for ev in reads)
    assert got == list(range(len(reads))), f"POP reads returned {got}"
    assert await tb.read(WRITES) == n_writes, "one write strobe per write"
    for addr in WORDS:
        assert await tb.read(addr) == model[addr], f"word {addr:#x}"
    assert await tb.read(POP) == len(reads)
    tb.monitor.check()


class RawMaster:
    """Five independent channel drivers on the pins: inputs change at the falling edge,
    handshakes are seen at the rising edge. Each VALID waits a random number of clocks,
    then holds until READY; BREADY and RREADY are random every clock."""

    def __init__(self, tb: SlaveTB, p_idle: float, p_ready: float):
        self.tb, self.dut, self.clk = tb, tb.dut, tb.clk
        self.p_idle, self.p_ready = p_idle, p_ready
        self.b_count = 0
        self.rdata: list[int] = []

    async def _valid_channel(self, items, set_payload, valid, ready) -> None:
        for item in items:
            await FallingEdge(self.clk)
            while random.random() < self.p_idle:
                valid.value = 0
                set_payload(None)
                await FallingEdge(self.clk)
            valid.value = 1
            set_payload(item)
            while True:
                await RisingEdge(self.clk)
                if int(ready.value):
                    break
        await FallingEdge(self.clk)
        valid.value = 0

    async def _ready_channel(self, count, valid, ready, on_data) -> None:
        n = 0
        while n < count:
            await FallingEdge(self.clk)
            ready.value = int(random.random() < self.p_ready)
            await RisingEdge(self.clk)
            if int(valid.value) and int(ready.value):
                on_data()
                n += 1
        await FallingEdge(self.clk)
        ready.value = 0

    async def run(self, writes, reads: list[int]) -> None:
        """writes: [(addr, data, strb)]; reads: addresses. RDATA lands in self.rdata."""
        d = self.dut

        def aw(item):
            d.s_axi_awaddr.value = item[0] if item else random.getrandbits(8)

        def w(item):
            d.s_axi_wdata.value = item[1] if item else random.getrandbits(32)
            d.s_axi_wstrb.value = item[2] if item else random.getrandbits(4)

        def ar(item):
            d.s_axi_araddr.value = item if item is not None else random.getrandbits(8)

        def on_b():
            assert int(d.s_axi_bresp.value) == 0
            self.b_count += 1

        def on_r():
            assert int(d.s_axi_rresp.value) == 0
            self.rdata.append(int(d.s_axi_rdata.value))

        tasks = [
            cocotb.start_soon(self._valid_channel(writes, aw, d.s_axi_awvalid, d.s_axi_awready)),
            cocotb.start_soon(self._valid_channel(writes, w, d.s_axi_wvalid, d.s_axi_wready)),
            cocotb.start_soon(self._ready_channel(len(writes), d.s_axi_bvalid, d.s_axi_bready, on_b)),
            cocotb.start_soon(self._valid_channel(reads, ar, d.s_axi_arvalid, d.s_axi_arready)),
            cocotb.start_soon(self._ready_channel(len(reads), d.s_axi_rvalid, d.s_axi_rready, on_r)),
        ]
        for t in tasks:
            await t


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(p_idle=[0.0, 0.3, 0.7], p_ready=[1.0, 0.5, 0.15])
async def test_raw_independent_channels(dut, p_idle, p_ready):
    """Raw pins, every channel on its own random timing: writes land in order with their
    own strobes, one B each, POP reads count 0, 1, 2, ..."""
    tb = SlaveTB(dut, master=False)
    await tb.reset()
    first = RawMaster(tb, p_idle, p_ready)
    await first.run([], WORDS)  # the words are not reset: start from what they hold
    model = dict(zip(WORDS, first.rdata))
    writes = []
    for _ in range(60):
        addr, data, strb = random.choice(WORDS), random.getrandbits(32), random.getrandbits(4)
        writes.append((addr | random.randrange(4), data, strb))  # low address bits ignored
        model[addr] = apply_strb(model[addr], data, strb)
    raw = RawMaster(tb, p_idle, p_ready)
    await raw.run(writes, [POP] * 50)
    assert raw.b_count == len(writes)
    assert raw.rdata == list(range(50)), f"POP reads returned {raw.rdata}"
    # read back through the raw driver too
    back = RawMaster(tb, p_idle, p_ready)
    await back.run([], WORDS + [WRITES, LAST_WRITE])
    assert back.rdata[:8] == [model[a] for a in WORDS], "words after the writes"
    a, _, strb = writes[-1]
    assert back.rdata[8:] == [len(writes), (strb << 8) | a], "WRITES, LAST_WRITE"
    tb.monitor.check()


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_reset_mid_traffic(dut):
    """A reset with requests pending: no response afterwards, the next traffic works."""
    tb = SlaveTB(dut, master=False)
    await tb.reset()
    d = dut
    await FallingEdge(tb.clk)
    d.s_axi_awvalid.value = 1
    d.s_axi_awaddr.value = 0x04
    d.s_axi_arvalid.value = 1
    d.s_axi_araddr.value = POP
    d.s_axi_bready.value = 0
    d.s_axi_rready.value = 0
    await FallingEdge(tb.clk)
    d.s_axi_awvalid.value = 0
    d.s_axi_arvalid.value = 0
    d.s_axi_aresetn.value = 0
    await ClockCycles(tb.clk, 3)
    await FallingEdge(tb.clk)
    d.s_axi_aresetn.value = 1
    for _ in range(4):
        await RisingEdge(tb.clk)
        assert not int(d.s_axi_bvalid.value) and not int(d.s_axi_rvalid.value)
        assert int(d.s_axi_awready.value) and int(d.s_axi_wready.value)
    raw = RawMaster(tb, 0.3, 0.5)
    await raw.run([(0x08, 0x12345678, 0xF)], [POP] * 3)
    assert raw.b_count == 1 and raw.rdata == [0, 1, 2]
    tb.monitor.check()


@pytest.mark.parametrize("name", ["default"])
def test_pmq_axil_slave_runner(name: str) -> None:
    run_bench("tb_pmq_axil_slave", "test_pmq_axil_slave", name, {},
              extra_sources=[TB_DIR / "tb_pmq_axil_slave.v"])
