"""cocotb bench of pynq_mqtt_io, identity and AXI: ID, VERSION, PARAMS, CLK_HZ, TIME and
every reset value; SCRATCH and WSTRB; unmapped addresses and read-only registers; the raw
AXI channels (AW/W order, BVALID/RVALID held, one read strobe per AR); byte strobes on
the registers that act on a write (LED_SET/CLR/TOGGLE, DROPPED, IRQ_STATUS).

How every top bench runs (stress passes, parameter sets, one shared build): pmq_top_tb.py.
"""

from __future__ import annotations

import random

import cocotb
import pytest
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiResp

from pmq_top_tb import (
    ADDR, CORE_TIMEOUT_US, EVENT, FEATURE_TIMEOUT_US, FIELDS, GEN_DONE, ID_VALUE, OVERFLOW,
    PARAM_SETS, REGMAP, REGS, STRESS, TB, Event, EventModel, RawAxi, apply_strb, bit, field,
    run_top,
)


# =====================================================================================
# registers
# =====================================================================================


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_identity_and_reset_values(dut, stress):
    """ID, VERSION, PARAMS, CLK_HZ read the build; every documented reset value; TIME
    counts microseconds."""
    tb = TB(dut, stress)
    await tb.reset()

    assert await tb.read("ID") == ID_VALUE

    version = await tb.read("VERSION")
    assert field(version, "VERSION", "MAJOR") == REGMAP["ip"]["version_major"]
    assert field(version, "VERSION", "MINOR") == REGMAP["ip"]["version_minor"]
    assert version & 0xFFFF == 0, f"VERSION reserved bits: {version:#010x}"

    params = await tb.read("PARAMS")
    assert field(params, "PARAMS", "N_INPUTS") == tb.n_inputs
    assert field(params, "PARAMS", "N_LEDS") == tb.n_leds
    assert 1 << field(params, "PARAMS", "FIFO_DEPTH_LOG2") == tb.fifo_depth
    assert field(params, "PARAMS", "GENERATOR") == tb.with_gen
    assert params >> 22 == 0, f"PARAMS reserved bits: {params:#010x}"

    assert await tb.read("CLK_HZ") == tb.clk_hz

    # every register with a reset value in the register map reads it, limited to the
    # bits this build implements ("ones": all of them)
    implemented = {
        "INPUT_ENABLE": tb.in_mask,
        "EDGE_RISE": tb.in_mask,
        "EDGE_FALL": tb.in_mask,
        "GEN_PATTERN": tb.in_mask,
        "LED": tb.led_mask,
    }
    checked = 0
    for name, reg in REGS.items():
        if "reset" not in reg:
            continue
        mask = implemented.get(name, 0xFFFFFFFF)
        expect = mask if reg["reset"] == "ones" else reg["reset"] & mask
        names = [f"{name}{k}" for k in range(tb.pwm_words)] if reg.get("count") else [name]
        for k, n in enumerate(names):
            if name == "LED_PWM":  # bytes of LEDs this build lacks read 0
                expect = reg["reset"] & ((1 << 8 * min(4, tb.n_leds - 4 * k)) - 1)
            got = await tb.read(n)
            assert got == expect, f"{n} after reset: {got:#x}, expected {expect:#x}"
            checked += 1
    assert checked >= 17, f"only {checked} reset values checked"
    # read-only views and write-only registers read 0 after reset
    for reg in ("FIFO_LEVEL", "INPUTS", "INPUTS_RAW", "EVT_POP", "IRQ_STATUS",
                "LED_SET", "LED_CLR", "LED_TOGGLE"):
        assert await tb.read(reg) == 0, f"{reg} after reset"
    assert int(dut.led.value) == 0
    assert int(dut.irq.value) == 0

    # TIME: microseconds since reset. A read samples TIME at its AR handshake, somewhere
    # between the cycle the read was issued and the cycle it returned.
    s1 = tb.cycle()
    t1 = await tb.read("TIME")
    e1 = tb.cycle()
    assert t1 <= e1 // tb.ticks + 1, f"TIME {t1} after only {e1} cycles"
    wait = 37 * tb.ticks + random.randrange(tb.ticks)
    await ClockCycles(tb.clk, wait)
    s2 = tb.cycle()
    t2 = await tb.read("TIME")
    e2 = tb.cycle()
    lo = (s2 - e1) // tb.ticks - 1
    hi = -(-(e2 - s1) // tb.ticks) + 1
    assert lo <= t2 - t1 <= hi, f"TIME advanced {t2 - t1} in {s2 - e1}..{e2 - s1} cycles"

    # concurrent reads of every identity register, all OKAY, data in order
    names = ["ID", "VERSION", "PARAMS", "CLK_HZ"] * 3
    events = [tb.axil.init_read(ADDR[n], 4) for n in names]
    for ev in events:
        await ev.wait()
    expect = {"ID": ID_VALUE, "VERSION": version, "PARAMS": params, "CLK_HZ": tb.clk_hz}
    for name, ev in zip(names, events):
        assert ev.data.resp == AxiResp.OKAY
        assert int.from_bytes(ev.data.data, "little") == expect[name], name


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_scratch_wstrb(dut, stress):
    """SCRATCH resets to 0, reads back what was written, and honours WSTRB byte by byte."""
    tb = TB(dut, stress)
    await tb.reset()
    base = ADDR["SCRATCH"]

    assert await tb.read("SCRATCH") == 0
    await tb.write("SCRATCH", 0x11223344)
    assert await tb.read("SCRATCH") == 0x11223344

    # single bytes, each lane on its own
    await tb.write_bytes(base + 2, b"\xaa")
    assert await tb.read("SCRATCH") == 0x11AA3344
    await tb.write_bytes(base + 0, b"\x55")
    assert await tb.read("SCRATCH") == 0x11AA3355
    await tb.write_bytes(base + 3, b"\x00")
    assert await tb.read("SCRATCH") == 0x00AA3355
    await tb.write_bytes(base + 1, b"\xff")
    assert await tb.read("SCRATCH") == 0x00AAFF55
    # half words
    await tb.write_bytes(base + 2, b"\x34\x12")
    assert await tb.read("SCRATCH") == 0x1234FF55
    await tb.write_bytes(base + 0, b"\xcd\xab")
    assert await tb.read("SCRATCH") == 0x1234ABCD

    # random values and random byte ranges against a model
    model = 0x1234ABCD
    for _ in range(24):
        start = random.randrange(4)
        length = random.randint(1, 4 - start)
        data = random.randbytes(length)
        await tb.write_bytes(base + start, data)
        for k, byte in enumerate(data):
            lane = start + k
            model = (model & ~(0xFF << 8 * lane)) | (byte << 8 * lane)
        assert await tb.read("SCRATCH") == model

    # the other read/write registers keep their own values and masks
    irq_bits = sum(1 << lsb for (reg, _), (lsb, _w) in FIELDS.items() if reg == "IRQ_ENABLE")
    await tb.write("IRQ_ENABLE", 0xFFFFFFFF)
    assert await tb.read("IRQ_ENABLE") == irq_bits, "IRQ_ENABLE: only its fields are implemented"
    await tb.write_bytes(ADDR["IRQ_ENABLE"] + 1, b"\xff")
    assert await tb.read("IRQ_ENABLE") == irq_bits
    await tb.write_bytes(ADDR["IRQ_ENABLE"] + 1, b"\x00")
    assert await tb.read("IRQ_ENABLE") == irq_bits, "a write to byte 1 must not touch byte 0"
    await tb.write_bytes(ADDR["IRQ_ENABLE"], b"\x00")
    assert await tb.read("IRQ_ENABLE") == 0
    assert await tb.read("SCRATCH") == model

    # writes and reads in flight together on different registers
    vals = [random.getrandbits(32) for _ in range(3)]
    w1 = tb.axil.init_write(base, vals[0].to_bytes(4, "little"))
    w2 = tb.axil.init_write(ADDR["LED"], vals[1].to_bytes(4, "little"))
    r1 = tb.axil.init_read(ADDR["ID"], 4)
    w3 = tb.axil.init_write(base, vals[2].to_bytes(4, "little"))
    r2 = tb.axil.init_read(ADDR["CLK_HZ"], 4)
    for ev in (w1, w2, r1, w3, r2):
        await ev.wait()
        assert ev.data.resp == AxiResp.OKAY
    assert int.from_bytes(r1.data.data, "little") == ID_VALUE
    assert int.from_bytes(r2.data.data, "little") == tb.clk_hz
    assert await tb.read("SCRATCH") == vals[2], "writes to one address land in order"
    assert await tb.read("LED") == vals[1] & tb.led_mask

    # reset clears it again
    await tb.reset()
    assert await tb.read("SCRATCH") == 0


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_unmapped_and_read_only(dut, stress):
    """Unmapped addresses read 0 and take writes with OKAY; read-only registers ignore writes."""
    tb = TB(dut, stress)
    await tb.reset()

    mapped = set(ADDR.values())
    unmapped = [a for a in range(0, 0x100, 4) if a not in mapped]
    # aliases of mapped registers under higher address bits must not decode
    unmapped += [0x1000, 0x8000, 0x8008, 0x8050, 0xFFFC, 0x4040]
    await tb.write("SCRATCH", 0xA5A5A5A5)
    await tb.write("LED", 0xFFFFFFFF)
    await tb.write("IRQ_ENABLE", 0)
    for addr in unmapped:
        assert await tb.read(addr) == 0, f"unmapped {addr:#06x} must read 0"
    for addr in random.sample(unmapped, 12) + [0x8008, 0x8050, 0x4040, 0x8020]:
        await tb.write(addr, random.getrandbits(32))  # OKAY checked in write()
        await tb.write_bytes(addr + random.randrange(4), b"\x5a")
    assert await tb.read("SCRATCH") == 0xA5A5A5A5
    assert await tb.read("LED") == tb.led_mask
    assert await tb.read("IRQ_ENABLE") == 0
    for addr in random.sample(unmapped, 8):
        assert await tb.read(addr) == 0, f"unmapped {addr:#06x} after writes"

    # read-only registers: writes are OKAY and change nothing
    version = await tb.read("VERSION")
    params = await tb.read("PARAMS")
    read_only = ("ID", "VERSION", "PARAMS", "CLK_HZ", "TIME", "FIFO_LEVEL", "INPUTS",
                 "INPUTS_RAW", "EVT_TS", "GEN_SENT", "IRQ_STATUS")
    for reg in read_only:
        await tb.write(reg, 0xFFFFFFFF)
    assert await tb.read("ID") == ID_VALUE
    assert await tb.read("VERSION") == version
    assert await tb.read("PARAMS") == params
    assert await tb.read("CLK_HZ") == tb.clk_hz
    for reg in ("FIFO_LEVEL", "INPUTS", "INPUTS_RAW", "EVT_TS", "GEN_SENT", "IRQ_STATUS"):
        assert await tb.read(reg) == 0, f"{reg} took a write"
    t = await tb.read("TIME")
    assert t < 0x100000, "TIME must not take a written value"

    # a write to EVT_POP does not pop
    model = EventModel(tb)
    await model.toggle(0)
    await model.toggle(0)
    assert await tb.read("FIFO_LEVEL") == 2
    await tb.write("EVT_POP", 0xFFFFFFFF)
    await tb.write("EVT_TS", 0)
    assert await tb.read("FIFO_LEVEL") == 2, "a write to EVT_POP must not pop"
    await model.pop_all()


# =====================================================================================
# raw AXI channels
# =====================================================================================


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_axi_write_channels_raw(dut, stress):
    """AW and W in either order or together; BVALID held until BREADY; one B per write."""
    tb = TB(dut, stress, master=False)
    raw = RawAxi(tb)
    await tb.reset()

    scratch = 0
    if stress:
        scenarios = [
            (random.randint(-6, 6), random.randint(0, 8), random.choice([0xF, 0xF, 0x3, 0x0, 0xA]))
            for _ in range(16)
        ]
    else:
        # (W cycles after AW: negative = W first, BREADY low cycles after both, WSTRB)
        scenarios = [(d, hold, 0xF) for d in (-5, -2, -1, 0, 1, 2, 5) for hold in (0, 6)]
        scenarios += [(-3, 2, 0x4), (3, 0, 0x9), (0, 4, 0x0)]

    for d, hold, strb in scenarios:
        data = random.getrandbits(32)
        aw_delay, w_delay = max(0, -d), max(0, d)
        start_b = max(aw_delay, w_delay) + hold
        if stress:
            bready = lambda c, s=start_b: c >= s and random.random() < 0.5  # noqa: E731
        else:
            bready = lambda c, s=start_b: c >= s  # noqa: E731
        await raw.writes([(ADDR["SCRATCH"], data, strb)], [aw_delay], [w_delay], bready)
        scratch = apply_strb(scratch, data, strb)
        got = await raw.read1(ADDR["SCRATCH"])
        assert got == scratch, (
            f"W {d:+d} cycles after AW, BREADY low {hold}, WSTRB {strb:#x}: "
            f"SCRATCH {got:#010x}, expected {scratch:#010x}"
        )

    # several writes in flight: new AW/W arrive while the previous B is still waiting.
    # Write k changes only byte k % 4 of SCRATCH, and LED gets the odd ones, so the
    # final values show every write landed, in order.
    n = 12
    writes, led = [], 0
    for k in range(n):
        if k % 2:
            val = random.getrandbits(32)
            writes.append((ADDR["LED"], val, 0xF))
            led = val & tb.led_mask
        else:
            val = random.getrandbits(32)
            strb = 1 << (k // 2 % 4)
            writes.append((ADDR["SCRATCH"], val, strb))
            scratch = apply_strb(scratch, val, strb)
    if stress:
        aw_delay = [random.choice([0, 0, 1, 3]) for _ in range(n)]
        w_delay = [random.choice([0, 0, 2, 4]) for _ in range(n)]
        bready = lambda c: c >= 5 and random.random() < 0.4  # noqa: E731
    else:
        aw_delay, w_delay = [0] * n, [3] + [0] * (n - 1)
        bready = lambda c: c >= 10 and c % 3 == 0  # noqa: E731
    await raw.writes(writes, aw_delay, w_delay, bready)
    assert await raw.read1(ADDR["SCRATCH"]) == scratch
    assert await raw.read1(ADDR["LED"]) == led
    assert int(dut.led.value) == led


@cocotb.test(timeout_time=CORE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_axi_read_channel_raw(dut, stress):
    """RVALID/RDATA held until RREADY; one read strobe per AR (EVT_POP pops once)."""
    tb = TB(dut, stress, master=False)
    raw = RawAxi(tb)
    await tb.reset()

    def rready_after(cycles):
        if stress:
            return lambda c: c >= cycles and random.random() < 0.5
        return lambda c: c >= cycles

    # one read, RREADY low for a while after RVALID
    for hold in (0, 1, 5, 9):
        data, _ = await raw.reads([ADDR["ID"]], [random.randrange(3) if stress else 0],
                                  rready_after(hold))
        assert data == [ID_VALUE]

    # a run of reads presented back to back, RREADY toggling
    scratch = random.getrandbits(32)
    await raw.write1(ADDR["SCRATCH"], scratch)
    names = ["ID", "VERSION", "CLK_HZ", "SCRATCH", "PARAMS", "LED", "ID", "CLK_HZ"]
    if stress:
        ar_delay = [random.choice([0, 0, 1, 2]) for _ in names]
        rready = lambda c: random.random() < 0.4  # noqa: E731
    else:
        ar_delay = [0] * len(names)
        rready = lambda c: c % 4 == 3  # noqa: E731
    data, _ = await raw.reads([ADDR[n] for n in names], ar_delay, rready)
    expect = {
        "ID": ID_VALUE,
        "VERSION": (REGMAP["ip"]["version_major"] << 24) | (REGMAP["ip"]["version_minor"] << 16),
        "CLK_HZ": tb.clk_hz,
        "SCRATCH": scratch,
        "PARAMS": tb.n_inputs | (tb.n_leds << 8) | ((tb.fifo_depth.bit_length() - 1) << 16)
        | (bit("PARAMS", "GENERATOR") if tb.with_gen else 0),
        "LED": 0,
    }
    assert data == [expect[n] for n in names]

    # EVT_POP: an R held for many cycles pops exactly one event
    model = EventModel(tb)
    n_ev = min(3, tb.capacity)
    for k in range(n_ev):
        await model.toggle(k % tb.n_inputs)
    addrs = [ADDR["EVT_POP"]] * (n_ev + 1) + [ADDR["FIFO_LEVEL"]]
    rready = (lambda c: random.random() < 0.2) if stress else (lambda c: c % 7 == 6)  # noqa: E731
    data, _ = await raw.reads(addrs, [0] * len(addrs), rready)
    for k in range(n_ev):
        ev = Event.decode(data[k])
        exp = model.queue.popleft()
        assert (ev.valid, ev.seq, ev.input, ev.level) == (1, exp.seq, exp.input, exp.level), (
            f"pop {k}: {ev} expected {exp}"
        )
    assert data[n_ev] == 0, "EVT_POP on an empty FIFO"
    assert data[n_ev + 1] == 0, "FIFO_LEVEL after popping everything"

    # TIME read on every clock: +1 exactly every CLK_HZ/1e6 cycles
    count = 3 * tb.ticks + 2
    data, ar_cycles = await raw.reads([ADDR["TIME"]] * count, [0] * count, lambda c: True)
    assert ar_cycles == list(range(ar_cycles[0], ar_cycles[0] + count)), "AR every cycle"
    steps = [b - a for a, b in zip(data, data[1:])]
    assert set(steps) <= {0, 1}, f"TIME steps {steps}"
    ups = [i for i, s in enumerate(steps) if s]
    assert len(ups) >= 2, f"TIME did not advance: {data}"
    assert all(b - a == tb.ticks for a, b in zip(ups, ups[1:])), (
        f"TIME must advance every {tb.ticks} cycles: {data}"
    )

    # INPUTS read on every clock while btn changes: the 2-flop synchronizer delays it
    before = model.pins
    pattern = before ^ random.randint(1, tb.in_mask)
    change_at = 3

    def drive(c):
        if c == change_at:
            dut.btn.value = pattern

    count = 10
    data, ar_cycles = await raw.reads(
        [ADDR["INPUTS"]] * count, [0] * count, lambda c: True, on_cycle=drive
    )
    first_new = data.index(pattern)
    assert all(v == before for v in data[:first_new]), f"INPUTS {data}"
    assert all(v == pattern for v in data[first_new:]), f"INPUTS {data}"
    latency = ar_cycles[first_new] - change_at
    assert 2 <= latency <= 3, f"btn change seen by INPUTS after {latency} cycles"


@cocotb.test(timeout_time=FEATURE_TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_wstrb_raw(dut, stress):
    """Raw writes with garbage in the unstrobed bytes: LED, LED_SET/CLR/TOGGLE, DROPPED
    and IRQ_STATUS act on the strobed bytes only."""
    tb = TB(dut, stress, master=False)
    raw = RawAxi(tb)
    await tb.reset()

    led = 0
    for _ in range(20):
        op = random.choice(["LED", "LED_SET", "LED_CLR", "LED_TOGGLE"])
        data, strb = random.getrandbits(32), random.choice([1, 2, 4, 8, 3, 12, random.getrandbits(4)])
        await raw.write1(ADDR[op], data, strb)
        v = apply_strb(0, data, strb, tb.led_mask)
        if op == "LED":
            led = apply_strb(led, data, strb, tb.led_mask)
        else:
            led = {"LED_SET": led | v, "LED_CLR": led & ~v, "LED_TOGGLE": led ^ v}[op]
        assert await raw.read1(ADDR["LED"]) == led, f"{op} data {data:#010x} strobes {strb:#x}"

    # DROPPED: only the strobed bytes are subtracted; IRQ_STATUS: only strobed bits clear
    en = bit("GEN_CTRL", "ENABLE")
    await raw.write1(ADDR["GEN_COUNT"], tb.capacity + 0x30)
    await raw.write1(ADDR["GEN_CTRL"], en)
    await ClockCycles(tb.clk, tb.capacity + 0x30 + 20)
    assert await raw.read1(ADDR["DROPPED"]) == 0x30
    await raw.write1(ADDR["DROPPED"], 0xA5A5A511, 0b0001)
    assert await raw.read1(ADDR["DROPPED"]) == 0x30 - 0x11
    await raw.write1(ADDR["DROPPED"], 0x000000FF, 0b1110)
    assert await raw.read1(ADDR["DROPPED"]) == 0x30 - 0x11, "unstrobed byte 0 subtracted"
    await raw.write1(ADDR["DROPPED"], 0x5A5A5A1F, 0b0001)
    assert await raw.read1(ADDR["DROPPED"]) == 0
    sticky = OVERFLOW | GEN_DONE
    assert await raw.read1(ADDR["IRQ_STATUS"]) == EVENT | sticky
    await raw.write1(ADDR["IRQ_STATUS"], 0xFFFFFFFF, 0b1110)
    assert await raw.read1(ADDR["IRQ_STATUS"]) == EVENT | sticky, "unstrobed byte 0 cleared"
    await raw.write1(ADDR["IRQ_STATUS"], 0xFFFFFF00 | OVERFLOW, 0b0001)
    assert await raw.read1(ADDR["IRQ_STATUS"]) == EVENT | GEN_DONE


# =====================================================================================
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================


@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_top_axi_runner(name: str) -> None:
    run_top("test_top_axi", name)
