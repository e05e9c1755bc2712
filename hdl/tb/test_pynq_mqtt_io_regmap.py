"""The register map (hdl/regmap/pynq_mqtt_io.toml, as schema.py reads it) and the RTL
agree on every register and field, checked through AXI on the top:

- every field's reset value (constants, "ones" = the implemented bits), and bits that no
  field covers, or beyond `implemented` (LED_PWM bytes of LEDs the build lacks), or of a
  register or field the build leaves out (`present`: GEN_* without WITH_GEN), read 0
  after reset and after writing all ones;
- writable fields (rw, hw "load"/"ext") take all ones and all zeros, per byte lane;
- read-only fields ignore writes, write-only registers read 0, a w1c bit is not set by
  a write of 1, a wsub register stays at its floor of 0;
- words of the decoded window that hold no register read 0 and ignore writes;
- the side effects: a generator run past the FIFO's capacity sets both w1c causes
  (a write of 0 keeps them, of 1 clears only that bit), DROPPED subtracts what is
  written, and reading EVT_POP pops one event (FIFO_LEVEL - 1) and loads EVT_TS.
Nothing here is written per register: a register added to the map is checked too.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import cocotb
import pytest
from cocotb.triggers import ClockCycles

from pmq_runner import REGMAP_TOML, ROOT, run_bench
from pmq_top_tb import NOGEN_PARAMS, PARAM_SETS, TB

sys.path.insert(0, str(ROOT / "hdl" / "regmap"))
from schema import load  # noqa: E402

SPEC = load(REGMAP_TOML)
WRITABLE = {"rw", "rw_load", "rw_ext"}
VOLATILE = {"TIME"}  # a read-only value that changes by itself
TIMEOUT_US = 400


class Map:
    """The register map, resolved for one build's parameters."""

    def __init__(self, tb: TB):
        self.params = {"N_INPUTS": tb.n_inputs, "N_LEDS": tb.n_leds,
                       "FIFO_DEPTH": tb.fifo_depth, "CLK_HZ": tb.clk_hz,
                       "WITH_GEN": tb.with_gen}
        assert set(self.params) == set(SPEC["params"]), "a build parameter the bench does not read"
        self.words = []  # (name, offset, reg, [(field, lsb, implemented width)])
        for r in SPEC["reg"]:
            impl = self.params.get(r.get("implemented"))
            nf = len(r["fields"])
            for k in range(r["count"]):
                name = r["name"] if r["count"] == 1 else f"{r['name']}{k}"
                fields = []
                for j, f in enumerate(r["fields"]):
                    w = f["width"]
                    if impl is not None and r["count"] == 1:
                        w = impl
                    elif impl is not None and k * nf + j >= impl:
                        w = 0  # this build lacks it: reads 0, ignores writes
                    if f.get("present") and not self.params[f["present"]]:
                        w = 0  # left out of this build (`present`): reads 0, ignores writes
                    fields.append((f, f["lsb"], w))
                self.words.append((name, r["offset"] + k * r["stride"], r, fields))

    def const(self, f) -> int:
        v = f["value"]
        if isinstance(v, int):
            return v
        if v in SPEC["ip"]:
            return SPEC["ip"][v]
        if v.endswith("_LOG2"):
            return (self.params[v[:-5]] - 1).bit_length()
        return self.params[v]


def mask(lsb: int, width: int) -> int:
    return ((1 << width) - 1) << lsb


def get(value: int, lsb: int, width: int) -> int:
    return (value >> lsb) & ((1 << width) - 1)


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_every_field_as_documented(dut):
    tb = TB(dut)
    m = Map(tb)
    checked = 0
    for name, off, reg, fields in m.words:
        await tb.reset()  # each register from reset: side effects do not leak
        used = 0
        reset_read = await tb.read(off)
        for f, lsb, w in fields:
            used |= mask(lsb, w)
            if w == 0:
                continue
            got = get(reset_read, lsb, w)
            if f["kind"] == "const":
                assert got == m.const(f) & ((1 << w) - 1), f"{name}.{f['name']}: {got:#x}, value {f['value']}"
            elif "reset" in f and name not in VOLATILE:
                want = (1 << w) - 1 if f["reset"] == "ones" else f["reset"] & ((1 << w) - 1)
                assert got == want, f"{name}.{f['name'] or name} after reset: {got:#x}, documented {want:#x}"
            checked += 1
        assert reset_read & ~used == 0, f"{name}: bits outside its fields read {reset_read & ~used:#x}"

        for pattern in (0xFFFFFFFF, 0x00000000):
            lanes = [0xF] if pattern == 0 else [1 << random.randrange(4), 0xF]
            for strb in lanes:
                if strb == 0xF:
                    await tb.write(off, pattern)
                else:  # one byte lane: the others keep their value
                    await tb.write_bytes(off + strb.bit_length() - 1, bytes([pattern & 0xFF]))
                got_all = await tb.read(off)
                lane_bits = sum(0xFF << 8 * b for b in range(4) if (strb >> b) & 1)
                assert got_all & ~used == 0, f"{name}: bits outside its fields read {got_all & ~used:#x}"
                for f, lsb, w in fields:
                    if w == 0:
                        continue
                    got, k = get(got_all, lsb, w), f["kind"]
                    what = f"{name}.{f['name'] or name} after writing {pattern:#x} (strobes {strb:#x})"
                    if k in WRITABLE:
                        want = get((reset_read & ~lane_bits) | (pattern & lane_bits), lsb, w)
                        assert got == want, f"{what}: {got:#x}, expected {want:#x}"
                    elif k in {"const", "ro_load"} or (k == "ro_in" and name not in VOLATILE):
                        assert got == get(reset_read, lsb, w), f"{what}: read-only field changed to {got:#x}"
                    elif k in {"w1c", "wsub", "wo", "rc"}:
                        assert got == 0, f"{what}: {got:#x} (nothing may set it)"
        checked += 1

    # words of the decoded window that hold no register
    taken = {off for _, off, _, _ in m.words}
    top = max(taken)
    holes = [a for a in range(0, top + 4, 4) if a not in taken]
    assert holes, "the map has no unused word to check"
    for a in holes:
        await tb.write(a, 0xFFFFFFFF)
        assert await tb.read(a) == 0, f"unmapped word {a:#04x} reads non-zero"
    assert checked > 2 * len(m.words), f"only {checked} checks"


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
async def test_side_effects_of_w1c_wsub_rc(dut):
    """The access types with side effects, on the registers the map gives them to."""
    tb = TB(dut)
    m = Map(tb)
    await tb.reset()
    by_kind: dict[str, list] = {}
    addr = {name: off for name, off, _, _ in m.words}
    for name, off, reg, fields in m.words:
        for f, lsb, w in fields:
            by_kind.setdefault(f["kind"], []).append((name, off, f, lsb))

    # a generator run past the FIFO's capacity: GEN_DONE and OVERFLOW set, events lost;
    # a few microseconds after reset, so that every event's stamp is non-zero
    await ClockCycles(tb.clk, 5 * tb.ticks)
    assert await tb.read("EVT_TS") == 0
    extra = 3
    await tb.write("GEN_COUNT", tb.capacity + extra)
    await tb.write("GEN_PERIOD", 1)
    await tb.write("GEN_CTRL", 1)
    await tb.wait_gen_done(20 * tb.capacity + 200)
    await ClockCycles(tb.clk, 8)

    w1c = by_kind["w1c"]
    assert {(n, f["name"]) for n, _, f, _ in w1c} == {("IRQ_STATUS", "OVERFLOW"), ("IRQ_STATUS", "GEN_DONE")}
    for name, off, f, lsb in w1c:
        assert (await tb.read(off) >> lsb) & 1, f"{name}.{f['name']} not set by its cause"
    for name, off, f, lsb in w1c:
        await tb.write(off, 0)
        assert (await tb.read(off) >> lsb) & 1, f"{name}.{f['name']}: a write of 0 cleared it"
        others = [(o, b) for n2, o, f2, b in w1c if f2 is not f and o == off]
        await tb.write(off, 1 << lsb)
        v = await tb.read(off)
        assert not (v >> lsb) & 1, f"{name}.{f['name']}: a write of 1 did not clear it"
        for _, b in others:
            if b > lsb:
                assert (v >> b) & 1, f"{name}: clearing bit {lsb} cleared bit {b} too"

    for name, off, f, lsb in by_kind["wsub"]:
        v = await tb.read(off)
        assert v >= 1, f"{name}: {v} after a run {extra} events past the FIFO's capacity"
        await tb.write(off, 1)
        assert await tb.read(off) == v - 1, f"{name}: a write of 1 does not subtract 1"
        await tb.write(off, 0xFFFFFFFF)
        assert await tb.read(off) == 0, f"{name}: not floored at 0"

    for name, off, f, lsb in by_kind["rc"]:
        if f["name"] != "VALID":
            continue
        level = await tb.read("FIFO_LEVEL")
        assert level > 0
        v = await tb.read(off)
        assert (v >> lsb) & 1, f"{name}: VALID = 0 with {level} events waiting"
        assert await tb.read("FIFO_LEVEL") == level - 1, f"reading {name} did not pop one event"
    loaded = [n for n, _, _, _ in by_kind["ro_load"]]
    assert loaded == ["EVT_TS"]
    ts = await tb.read(addr["EVT_TS"])
    assert 5 <= ts <= await tb.read("TIME"), f"EVT_TS {ts}: not loaded by the pop"


@pytest.mark.parametrize("name", ["default", "min", "wide"])
def test_pynq_mqtt_io_regmap_runner(name: str) -> None:
    run_bench("pynq_mqtt_io", "test_pynq_mqtt_io_regmap", f"regmap-{name}", PARAM_SETS[name])


def test_pynq_mqtt_io_regmap_nogen() -> None:
    """The default build, without the generator: every field as documented (the GEN_*
    registers and GEN_DONE bits read 0 and ignore writes); the side effects need the
    generator and run above."""
    run_bench("pynq_mqtt_io", "test_pynq_mqtt_io_regmap", "top-nogen", NOGEN_PARAMS,
              testcase="test_every_field_as_documented")
