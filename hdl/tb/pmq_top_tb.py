"""Shared machinery of the pynq_mqtt_io top benches (test_top_*.py, one per concern): the
register map from hdl/regmap/pynq_mqtt_io.toml, a TB with clock, reset, pins, a
cocotbext-axi AXI4-Lite master and an AXI4-Lite protocol monitor on every clock, a model
of the event path, raw pin drivers for the five AXI channels (RawAxi) for cycle-exact
tests, the parameter sets, and run_top, the pytest side of every top bench.

Every cocotb test of a top bench runs twice: stress=False with an always-ready master,
and stress=True, where the master idles randomly on AW, W and AR and applies random
backpressure on B and R (the raw tests drive the AXI pins themselves and randomize their
own channel timing); the AXI4-Lite monitor checks every clock. Each bench's pytest
runner calls run_top for every parameter set of PARAM_SETS; the benches share one build
per set.
"""

from __future__ import annotations

import math
import random
import tomllib
from collections import deque
from dataclasses import dataclass
from fractions import Fraction

from cocotb.clock import Clock
from cocotb.simtime import get_sim_time
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from axil_monitor import AxilMonitor
from pmq_runner import REGMAP_TOML, run_bench

REGMAP = tomllib.loads(REGMAP_TOML.read_text())
REGS: dict[str, dict] = {}
ADDR: dict[str, int] = {}
for _reg in REGMAP["reg"]:
    REGS[_reg["name"]] = _reg
    ADDR[_reg["name"]] = _reg["offset"]
    for _k in range(_reg.get("count", 0)):  # an array: NAME0, NAME1, ...
        ADDR[f"{_reg['name']}{_k}"] = _reg["offset"] + _k * _reg["stride"]
FIELDS = {
    (reg["name"], field["name"]): (field["lsb"], field["width"])
    for reg in REGMAP["reg"]
    for field in reg.get("fields", [])
}

ID_VALUE = 0x504D5154  # "PMQT"
assert REGMAP["ip"]["id"] == ID_VALUE, "regmap toml and bench disagree on the ID"

PERIOD_NS = 10  # simulated s_axi_aclk period; TIME is checked in clock cycles, not ns
STRESS = [False, True]
PWM_PERIOD = 4096  # clock cycles
# simulated time limits per cocotb test: the identity, AXI, event, overflow and LED tests
# (the longest, overflow with FIFO_DEPTH=512, takes ~60 us), and the tests of the
# features added in v0.2 (debounce, irq, DROPPED, LED operations and PWM, generator)
CORE_TIMEOUT_US = 200
FEATURE_TIMEOUT_US = 3000

# the parameter sets the top benches run with; every one builds the event generator
# (WITH_GEN=1), which the benches use to fill the FIFO and count losses
PARAM_SETS = {
    # N_INPUTS=4, N_LEDS=4, FIFO_DEPTH=512 (defaults); 10 cycles per microsecond
    "default": {"CLK_HZ": 10_000_000, "WITH_GEN": 1},
    # smallest instance; one cycle per microsecond
    "min": {"N_INPUTS": 1, "N_LEDS": 1, "FIFO_DEPTH": 4, "CLK_HZ": 1_000_000, "WITH_GEN": 1},
    # more inputs than FIFO slots per burst; LED register full width
    "wide": {"N_INPUTS": 8, "N_LEDS": 32, "FIFO_DEPTH": 16, "CLK_HZ": 25_000_000, "WITH_GEN": 1},
    # the widest input vector; 125 cycles per microsecond
    "max": {"N_INPUTS": 32, "N_LEDS": 16, "FIFO_DEPTH": 64, "CLK_HZ": 125_000_000, "WITH_GEN": 1},
}
# the IP's own default build, without the generator (test_top_nogen.py and the register
# map's agreement test)
NOGEN_PARAMS = {"CLK_HZ": 10_000_000}


def run_top(test_module: str, name: str) -> None:
    """Runs the cocotb tests of one top bench on parameter set `name`. Every top bench
    shares one build per set (hdl/tb/sim_build-pynq_mqtt_io-top-<set>)."""
    run_bench("pynq_mqtt_io", test_module, f"top-{name}", PARAM_SETS[name])


def field(value: int, reg: str, name: str) -> int:
    lsb, width = FIELDS[(reg, name)]
    return (value >> lsb) & ((1 << width) - 1)


def bit(reg: str, name: str) -> int:
    """The mask of a one-bit field."""
    lsb, width = FIELDS[(reg, name)]
    assert width == 1
    return 1 << lsb


def us_cycles(tb: TB, min_cycles: int, at_least_us: int = 3) -> int:
    """A time in microseconds that lasts at least min_cycles clocks in this build."""
    return max(at_least_us, math.ceil(min_cycles / tb.ticks))


def random_pause(probability: float):
    """An endless pause pattern for a cocotbext-axi channel: True = idle / not ready."""
    while True:
        yield random.random() < probability



EVENT = bit("IRQ_STATUS", "EVENT")
OVERFLOW = bit("IRQ_STATUS", "OVERFLOW")
GEN_DONE = bit("IRQ_STATUS", "GEN_DONE")


@dataclass
class Event:
    valid: int
    level: int
    input: int
    seq: int
    raw: int
    ts: int | None = None
    synthetic: int = 0

    @classmethod
    def decode(cls, raw: int, ts: int | None = None) -> Event:
        ev = cls(
            valid=field(raw, "EVT_POP", "VALID"),
            level=field(raw, "EVT_POP", "LEVEL"),
            input=field(raw, "EVT_POP", "INPUT"),
            seq=field(raw, "EVT_POP", "SEQ"),
            raw=raw,
            ts=ts,
            synthetic=field(raw, "EVT_POP", "SYNTHETIC"),
        )
        # every bit outside the documented fields reads 0
        known = 0
        for (reg, _), (lsb, width) in FIELDS.items():
            if reg == "EVT_POP":
                known |= ((1 << width) - 1) << lsb
        assert raw & ~known == 0, f"EVT_POP reserved bits set: {raw:#010x}"
        return ev


@dataclass
class ModelEvent:
    seq: int
    input: int
    level: int
    cycle: int  # clock cycle at which the pins changed
    synthetic: int = 0



class TB:
    """Clock, reset, pins, and (unless raw) a cocotbext-axi AXI4-Lite master."""

    def __init__(self, dut, stress: bool = False, master: bool = True):
        self.dut = dut
        self.clk = dut.s_axi_aclk
        self.log = dut._log
        self.stress = stress

        self.n_inputs = self._param("N_INPUTS")
        self.n_leds = self._param("N_LEDS")
        self.fifo_depth = self._param("FIFO_DEPTH")
        self.clk_hz = self._param("CLK_HZ")
        self.with_gen = self._param("WITH_GEN")
        self.ticks = max(1, self.clk_hz // 1_000_000)  # clock cycles per microsecond
        self.capacity = self.fifo_depth + 1  # FIFO storage plus its output register
        self.in_mask = (1 << self.n_inputs) - 1
        self.led_mask = (1 << self.n_leds) - 1
        self.pwm_words = (self.n_leds + 3) // 4
        self.log.info(
            "N_INPUTS=%d N_LEDS=%d FIFO_DEPTH=%d CLK_HZ=%d WITH_GEN=%d stress=%s",
            self.n_inputs, self.n_leds, self.fifo_depth, self.clk_hz, self.with_gen, stress,
        )

        # every input the bench (or the raw driver) owns starts in a known state
        dut.btn.value = 0
        dut.s_axi_aresetn.value = 0
        for name in ("awvalid", "wvalid", "arvalid", "bready", "rready"):
            getattr(dut, f"s_axi_{name}").value = 0
        for name in ("awaddr", "wdata", "wstrb", "araddr", "awprot", "arprot"):
            getattr(dut, f"s_axi_{name}").value = 0

        Clock(self.clk, PERIOD_NS, unit="ns").start()
        self.monitor = AxilMonitor(dut)  # the protocol rules, every clock of every test

        self.axil = None
        if master:
            self.start_master()

    def _param(self, name: str) -> int:
        return int(getattr(self.dut, name).value)

    def start_master(self) -> None:
        self.axil = AxiLiteMaster(
            AxiLiteBus.from_prefix(self.dut, "s_axi"),
            self.clk,
            self.dut.s_axi_aresetn,
            reset_active_level=False,
        )
        for logger in (self.axil.write_if.log, self.axil.read_if.log):
            logger.setLevel("WARNING")
        if self.stress:
            w, r = self.axil.write_if, self.axil.read_if
            # idle cycles on the master's VALIDs, backpressure on its READYs
            for channel in (w.aw_channel, w.w_channel, r.ar_channel):
                channel.set_pause_generator(random_pause(0.4))
            for channel in (w.b_channel, r.r_channel):
                channel.set_pause_generator(random_pause(0.5))

    def cycle(self) -> int:
        """Index of the current clock cycle: +1 per rising edge, consistent within a test."""
        return int(get_sim_time("ns")) // PERIOD_NS

    async def reset(self) -> None:
        self.dut.s_axi_aresetn.value = 0
        self.dut.btn.value = 0
        await ClockCycles(self.clk, 8)
        self.dut.s_axi_aresetn.value = 1
        await ClockCycles(self.clk, 4)
        assert int(self.dut.irq.value) == 0, "irq high after reset"

    # ---- register access through the cocotbext-axi master ---------------------------
    async def read(self, reg: str | int) -> int:
        addr = ADDR[reg] if isinstance(reg, str) else reg
        resp = await self.axil.read(addr, 4)
        assert resp.resp == AxiResp.OKAY, f"read {addr:#06x}: {resp.resp!r}"
        return int.from_bytes(resp.data, "little")

    async def write(self, reg: str | int, value: int) -> None:
        addr = ADDR[reg] if isinstance(reg, str) else reg
        await self.write_bytes(addr, value.to_bytes(4, "little"))

    async def write_bytes(self, addr: int, data: bytes) -> None:
        """A write of len(data) bytes at addr: WSTRB covers exactly those bytes."""
        resp = await self.axil.write(addr, data)
        assert resp.resp == AxiResp.OKAY, f"write {addr:#06x}: {resp.resp!r}"

    async def pop(self) -> Event:
        raw = await self.read("EVT_POP")
        ts = await self.read("EVT_TS") if field(raw, "EVT_POP", "VALID") else None
        return Event.decode(raw, ts)

    # ---- pins ---------------------------------------------------------------------------
    async def drive_btn(self, value: int) -> int:
        """Changes the btn pins right after a rising edge; returns that cycle's index."""
        await RisingEdge(self.clk)
        self.dut.btn.value = value & self.in_mask
        return self.cycle()

    async def wait_events_settled(self, n_edges: int) -> None:
        # synchronizer (2) + debounce (1) + detection (1) + snapshot queue (2) + one
        # event per clock + event FIFO (2), with margin
        await ClockCycles(self.clk, 12 + n_edges)

    @property
    def irq(self) -> int:
        return int(self.dut.irq.value)

    async def drain(self, limit: int | None = None) -> list[Event]:
        """Pops (EVT_POP, then EVT_TS) until EVT_POP reads VALID = 0."""
        got = []
        while True:
            ev = await self.pop()
            if not ev.valid:
                assert ev.raw == 0, f"EVT_POP on an empty FIFO read {ev.raw:#010x}"
                return got
            got.append(ev)
            assert limit is None or len(got) <= limit, f"more than {limit} events"

    async def start_gen(self, count: int, period: int, pattern: int) -> None:
        await self.write("GEN_COUNT", count)
        await self.write("GEN_PERIOD", period)
        await self.write("GEN_PATTERN", pattern)
        await self.write("GEN_CTRL", bit("GEN_CTRL", "ENABLE"))

    async def wait_gen_done(self, max_cycles: int) -> None:
        """Polls GEN_CTRL until ENABLE has cleared itself."""
        start = self.cycle()
        while await self.read("GEN_CTRL"):
            assert self.cycle() - start < max_cycles, "the generator did not finish"
            await ClockCycles(self.clk, 8)

    async def led_high_counts(self, cycles: int) -> list[int]:
        """Samples the led pins on `cycles` consecutive clocks: high clocks per LED."""
        counts = [0] * self.n_leds
        for _ in range(cycles):
            await RisingEdge(self.clk)
            v = int(self.dut.led.value)
            if v:
                for i in range(self.n_leds):
                    counts[i] += (v >> i) & 1
        return counts


async def fill_with_generator(tb: TB, count: int, period: int = 0, pattern: int = 1) -> None:
    await tb.start_gen(count, period, pattern)
    await tb.wait_gen_done(count * max(1, period) + 2000)


class EventModel:
    """What the event path must produce, for edges spaced so no snapshot is lost."""

    def __init__(self, tb: TB):
        self.tb = tb
        self.pins = 0
        self.seq = 0
        self.queue: deque[ModelEvent] = deque()
        self.dropped = 0
        self.ref: tuple[int, int] | None = None  # (cycle, ts) of the first popped event
        self.last_ts: int | None = None
        # INPUT_ENABLE, EDGE_RISE, EDGE_FALL as the bench set them
        self.enable = self.rise = self.fall = tb.in_mask

    async def set_pins(self, value: int, settle: bool = True) -> None:
        value &= self.tb.in_mask
        cycle = await self.tb.drive_btn(value)
        changed = value ^ self.pins
        counted = changed & self.enable & ((value & self.rise) | (~value & self.fall))
        for i in range(self.tb.n_inputs):  # serialized lowest input first
            if (counted >> i) & 1:
                ev = ModelEvent(self.seq & 0xFFFF, i, (value >> i) & 1, cycle)
                self.seq += 1
                if len(self.queue) < self.tb.capacity:
                    self.queue.append(ev)
                else:
                    self.dropped += 1
        self.pins = value
        if settle:
            await self.tb.wait_events_settled(bin(changed).count("1"))

    async def toggle(self, i: int, settle: bool = True) -> None:
        await self.set_pins(self.pins ^ (1 << i), settle)

    def check(self, got: Event) -> None:
        assert self.queue, f"event popped but none expected: {got}"
        exp = self.queue.popleft()
        assert got.valid == 1, f"EVT_POP VALID=0, expected {exp}"
        assert (got.seq, got.input, got.level, got.synthetic) == (
            exp.seq, exp.input, exp.level, exp.synthetic
        ), (
            f"got seq={got.seq} input={got.input} level={got.level} "
            f"synthetic={got.synthetic}, expected {exp}"
        )
        self.check_ts(got.ts, exp.cycle)

    def check_ts(self, ts: int, cycle: int) -> None:
        """Timestamps never go back, and advance by one per CLK_HZ/1e6 clock cycles."""
        if self.last_ts is not None:
            assert ts >= self.last_ts, f"timestamp went back: {ts} after {self.last_ts}"
        self.last_ts = ts
        if self.ref is None:
            self.ref = (cycle, ts)
            return
        ref_cycle, ref_ts = self.ref
        expected = Fraction(cycle - ref_cycle, self.tb.ticks)
        assert abs((ts - ref_ts) - expected) < 1, (
            f"timestamp {ts} for an edge {cycle - ref_cycle} cycles after the one stamped "
            f"{ref_ts}: expected {ref_ts} + {float(expected):.2f}"
        )

    async def pop_all(self) -> None:
        while self.queue:
            self.check(await self.tb.pop())
        empty = await self.tb.pop()
        assert empty.raw == 0, f"EVT_POP on an empty FIFO read {empty.raw:#010x}"




class RawAxi:
    """Drives the AXI4-Lite pins one clock at a time, without cocotbext-axi.

    Each loop iteration drives the inputs at the falling edge, then samples every
    handshake signal in the ReadOnly phase: what it sees is what the slave sees at the
    next rising edge.
    """

    def __init__(self, tb: TB):
        self.tb = tb
        self.dut = tb.dut

    def _garbage_addr(self) -> int:
        return random.getrandbits(16) & ~0x3

    async def writes(self, writes, aw_delay, w_delay, bready, max_cycles=None):
        """Performs writes = [(addr, data, strb), ...] in order.

        aw_delay[k] / w_delay[k]: idle cycles before AW / W k is presented, counted from
        the previous handshake on that channel (so the two channels run independently
        and either may lead); bready(cycle) gives BREADY. Checks that VALIDs are
        accepted, that BVALID (and BRESP) hold until BREADY, that B k comes only after
        both AW k and W k were accepted, and that there is exactly one B per write.
        """
        dut = self.dut
        n = len(writes)
        if max_cycles is None:
            max_cycles = 200 + 20 * n
        aw_k = w_k = b_count = 0
        aw_wait, w_wait = aw_delay[0], w_delay[0]
        aw_hs = w_hs = 0
        b_held = False
        done_at = None
        cyc = 0
        while True:
            await FallingEdge(self.tb.clk)
            if aw_k < n and aw_wait == 0:
                dut.s_axi_awvalid.value = 1
                dut.s_axi_awaddr.value = writes[aw_k][0]
                dut.s_axi_awprot.value = random.getrandbits(3)
            else:
                dut.s_axi_awvalid.value = 0
                dut.s_axi_awaddr.value = self._garbage_addr()
            if w_k < n and w_wait == 0:
                dut.s_axi_wvalid.value = 1
                dut.s_axi_wdata.value = writes[w_k][1]
                dut.s_axi_wstrb.value = writes[w_k][2]
            else:
                dut.s_axi_wvalid.value = 0
                dut.s_axi_wdata.value = random.getrandbits(32)
                dut.s_axi_wstrb.value = random.getrandbits(4)
            dut.s_axi_bready.value = 1 if done_at is not None else int(bool(bready(cyc)))
            await ReadOnly()

            awv, awr = int(dut.s_axi_awvalid.value), int(dut.s_axi_awready.value)
            wv, wr = int(dut.s_axi_wvalid.value), int(dut.s_axi_wready.value)
            bv, br = int(dut.s_axi_bvalid.value), int(dut.s_axi_bready.value)
            if b_held:
                assert bv == 1, f"cycle {cyc}: BVALID dropped before BREADY"
            if bv:
                assert int(dut.s_axi_bresp.value) == 0, f"cycle {cyc}: BRESP not OKAY"
                assert b_count < min(aw_hs, w_hs), (
                    f"cycle {cyc}: BVALID for write {b_count} but only {aw_hs} AW and "
                    f"{w_hs} W accepted before (one B per write, after both)"
                )
            if bv and br:
                b_count += 1
            b_held = bool(bv and not br)
            if awv and awr:
                aw_hs += 1
                aw_k += 1
                if aw_k < n:
                    aw_wait = aw_delay[aw_k]
            elif not awv and aw_wait:
                aw_wait -= 1
            if wv and wr:
                w_hs += 1
                w_k += 1
                if w_k < n:
                    w_wait = w_delay[w_k]
            elif not wv and w_wait:
                w_wait -= 1

            if b_count == n and done_at is None:
                done_at = cyc
            if done_at is not None and cyc - done_at >= 4:
                break  # four more cycles with BREADY high and no extra B
            cyc += 1
            assert cyc < max_cycles, (
                f"write stuck: {aw_hs} AW, {w_hs} W, {b_count} B accepted of {n}"
            )
        await FallingEdge(self.tb.clk)
        dut.s_axi_awvalid.value = 0
        dut.s_axi_wvalid.value = 0
        dut.s_axi_bready.value = 0

    async def reads(self, addrs, ar_delay, rready, on_cycle=None, max_cycles=None):
        """Reads addrs in order; returns (data list, cycle of each AR handshake).

        ar_delay[k]: idle cycles before AR k; rready(cycle) gives RREADY; on_cycle(cycle)
        runs at the falling edge before the inputs are sampled. Checks that RVALID, RDATA
        and RRESP hold until RREADY, that R k comes only after AR k was accepted, and
        that there is exactly one R per read.
        """
        dut = self.dut
        n = len(addrs)
        if max_cycles is None:
            max_cycles = 200 + 20 * n
        ar_k = 0
        ar_wait = ar_delay[0]
        ar_cycles: list[int] = []
        data: list[int] = []
        held = None
        done_at = None
        cyc = 0
        while True:
            await FallingEdge(self.tb.clk)
            if on_cycle is not None:
                on_cycle(cyc)
            if ar_k < n and ar_wait == 0:
                dut.s_axi_arvalid.value = 1
                dut.s_axi_araddr.value = addrs[ar_k]
                dut.s_axi_arprot.value = random.getrandbits(3)
            else:
                dut.s_axi_arvalid.value = 0
                dut.s_axi_araddr.value = self._garbage_addr()
            dut.s_axi_rready.value = 1 if done_at is not None else int(bool(rready(cyc)))
            await ReadOnly()

            arv, arr = int(dut.s_axi_arvalid.value), int(dut.s_axi_arready.value)
            rv, rr = int(dut.s_axi_rvalid.value), int(dut.s_axi_rready.value)
            if held is not None:
                assert rv == 1, f"cycle {cyc}: RVALID dropped before RREADY"
                assert int(dut.s_axi_rdata.value) == held, f"cycle {cyc}: RDATA changed"
            if rv:
                assert int(dut.s_axi_rresp.value) == 0, f"cycle {cyc}: RRESP not OKAY"
                assert len(data) < len(ar_cycles), (
                    f"cycle {cyc}: RVALID for read {len(data)} with {len(ar_cycles)} AR accepted"
                )
            rdata = int(dut.s_axi_rdata.value) if rv else None
            if rv and rr:
                data.append(rdata)
            held = rdata if rv and not rr else None
            if arv and arr:
                ar_cycles.append(cyc)
                ar_k += 1
                if ar_k < n:
                    ar_wait = ar_delay[ar_k]
            elif not arv and ar_wait:
                ar_wait -= 1

            if len(data) == n and done_at is None:
                done_at = cyc
            if done_at is not None and cyc - done_at >= 4:
                break
            cyc += 1
            assert cyc < max_cycles, f"read stuck: {len(ar_cycles)} AR, {len(data)} R of {n}"
        await FallingEdge(self.tb.clk)
        dut.s_axi_arvalid.value = 0
        dut.s_axi_rready.value = 0
        return data, ar_cycles

    async def read1(self, addr: int) -> int:
        """One read; with stress, after random idle cycles and under random RREADY."""
        if self.tb.stress:
            data, _ = await self.reads(
                [addr], [random.randrange(4)], lambda c: random.random() < 0.5
            )
        else:
            data, _ = await self.reads([addr], [0], lambda c: True)
        return data[0]

    async def write1(self, addr: int, data: int, strb: int = 0xF) -> None:
        """One write; with stress, AW and W after random idle cycles, random BREADY."""
        if self.tb.stress:
            await self.writes(
                [(addr, data, strb)], [random.randrange(4)], [random.randrange(4)],
                lambda c: random.random() < 0.5,
            )
        else:
            await self.writes([(addr, data, strb)], [0], [0], lambda c: True)


def apply_strb(old: int, data: int, strb: int, mask: int = 0xFFFFFFFF) -> int:
    for lane in range(4):
        if (strb >> lane) & 1:
            old = (old & ~(0xFF << 8 * lane)) | (data & (0xFF << 8 * lane))
    return old & mask

