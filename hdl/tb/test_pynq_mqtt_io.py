"""cocotb bench for pynq_mqtt_io, the top level of the button/LED AXI4-Lite peripheral:
identity and register basics, the raw AXI channels, the event path, FIFO overflow, LEDs
and inputs. The v0.2 features (debounce, edge select, coalescing interrupt, DROPPED,
LED operations and PWM, the event generator) are in test_pynq_mqtt_io_features.py; the
shared machinery (TB, event model, raw AXI drivers) is in pmq_top_tb.py.

Run it through pytest (see README.md): ``test_pynq_mqtt_io_runner`` at the bottom builds
the RTL with Icarus Verilog for a few parameter sets and runs every cocotb test below on
each. Register addresses and fields come from hdl/regmap/pynq_mqtt_io.toml.

Every cocotb test runs twice: ``stress=False`` with an always-ready AXI master, and
``stress=True`` with random idle cycles on AW, W and AR and random backpressure on B and
R. The two ``*_raw`` tests drive the AXI pins themselves (no cocotbext-axi) to control
the exact cycle of every VALID and READY; their stress pass randomizes those too. An
AXI4-Lite protocol monitor (axil_monitor.py) checks every clock of every test.
"""

from __future__ import annotations

import random
from fractions import Fraction

import cocotb
import pytest
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiResp

from pmq_runner import run_bench
from pmq_top_tb import (
    ADDR,
    ID_VALUE,
    REGMAP,
    REGS,
    STRESS,
    TB,
    Event,
    EventModel,
    RawAxi,
    apply_strb,
    PARAM_SETS,
    FIELDS,
    field,
)

TIMEOUT_US = 200  # simulated; the longest test (overflow, FIFO_DEPTH=512) takes ~60 us


# =====================================================================================
# registers
# =====================================================================================


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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
    assert params >> 21 == 0, f"PARAMS reserved bits: {params:#010x}"

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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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



@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
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
        "PARAMS": tb.n_inputs | (tb.n_leds << 8) | ((tb.fifo_depth.bit_length() - 1) << 16),
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


# =====================================================================================
# events
# =====================================================================================


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_events_and_irq(dut, stress):
    """Edges become events (input, level, seq, timestamp); FIFO_LEVEL; irq follows IRQ_ENABLE."""
    tb = TB(dut, stress)
    await tb.reset()
    model = EventModel(tb)

    assert (await tb.pop()).raw == 0, "EVT_POP with nothing detected"

    # a few single edges, at random spacing, with IRQ_ENABLE = 0
    read_start = tb.cycle()
    t_before = await tb.read("TIME")
    n = min(tb.capacity, 10)
    for _ in range(n):
        await model.toggle(random.randrange(tb.n_inputs), settle=False)
        await ClockCycles(tb.clk, random.randint(3, 3 * tb.ticks + 3))
        assert int(dut.irq.value) == 0, "irq with IRQ_ENABLE = 0"
    await tb.wait_events_settled(1)
    assert await tb.read("FIFO_LEVEL") == n
    assert int(dut.irq.value) == 0, "irq with IRQ_ENABLE = 0 and events waiting"
    t_after = await tb.read("TIME")

    await tb.write("IRQ_ENABLE", 1)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 1, "irq low with IRQ_ENABLE = 1 and events waiting"
    await tb.write("IRQ_ENABLE", 0)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0, "irq still high after IRQ_ENABLE = 0"
    await tb.write("IRQ_ENABLE", 1)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 1

    # the first event is stamped with TIME at its detection, 2-3 cycles after the pins
    # changed; t_before was sampled at most (toggle - read_start) cycles before that
    first_cycle = model.queue[0].cycle
    max_ts = t_before + (first_cycle + 4 - read_start) // tb.ticks + 1

    last_ts = None
    for k in range(n):
        got = await tb.pop()
        assert t_before <= got.ts <= t_after, (
            f"event {k} stamped {got.ts}, TIME was {t_before}..{t_after}"
        )
        if k == 0:
            assert got.ts <= max_ts, f"first event stamped {got.ts}, TIME was {t_before}"
        model.check(got)
        last_ts = got.ts
        level = await tb.read("FIFO_LEVEL")
        assert level == n - k - 1, f"FIFO_LEVEL {level} after {k + 1} of {n} pops"
        await ClockCycles(tb.clk, 2)
        assert int(dut.irq.value) == (1 if level else 0), f"irq with {level} events waiting"
    assert not model.queue

    # empty: VALID = 0, nothing popped, EVT_TS keeps the last popped timestamp
    for _ in range(3):
        assert (await tb.read("EVT_POP")) == 0
    assert await tb.read("EVT_TS") == last_ts
    assert await tb.read("FIFO_LEVEL") == 0
    assert int(dut.irq.value) == 0

    # the next edge continues the sequence (the empty pops consumed nothing) and
    # raises irq by itself
    await model.toggle(tb.n_inputs - 1)
    assert int(dut.irq.value) == 1, "irq did not rise for a new event"
    now = await tb.read("TIME")
    got = await tb.pop()
    assert got.seq == n
    assert got.ts <= now
    model.check(got)
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0

    # pops pipelined back to back: each AR pops exactly one event, in order
    m = min(tb.capacity, 6)
    for _ in range(m):
        await model.toggle(random.randrange(tb.n_inputs))
    assert await tb.read("FIFO_LEVEL") == m
    reads = [tb.axil.init_read(ADDR["EVT_POP"], 4) for _ in range(m + 2)]
    for ev in reads:
        await ev.wait()
    words = [int.from_bytes(ev.data.data, "little") for ev in reads]
    for word in words[:m]:
        ev = Event.decode(word)
        exp = model.queue.popleft()
        assert (ev.valid, ev.seq, ev.input, ev.level) == (1, exp.seq, exp.input, exp.level)
    assert words[m:] == [0, 0]
    assert await tb.read("FIFO_LEVEL") == 0
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_simultaneous_edges(dut, stress):
    """Edges in one cycle come out lowest input first, one timestamp; bursts are accounted."""
    tb = TB(dut, stress)
    await tb.reset()
    model = EventModel(tb)
    n = tb.n_inputs

    async def pop_group(count):
        got = [await tb.pop() for _ in range(count)]
        for ev in got:
            model.check(ev)
        assert len({ev.ts for ev in got}) == 1, f"one cycle, several timestamps: {got}"
        return got

    # all inputs at once, up and down, then random subsets
    patterns = [tb.in_mask, 0] + [random.randint(0, tb.in_mask) for _ in range(4)]
    for pattern in patterns:
        changed = pattern ^ model.pins
        if not changed:
            continue
        width = bin(changed).count("1")
        first = model.seq
        await model.set_pins(pattern)
        assert await tb.read("FIFO_LEVEL") == width
        got = await pop_group(width)
        assert [ev.input for ev in got] == [i for i in range(n) if (changed >> i) & 1]
        assert [ev.seq for ev in got] == list(range(first, first + width))
    assert (await tb.pop()).raw == 0
    assert await tb.read("DROPPED") == 0

    # every input toggling on every clock, for a few clocks: faster than one event per
    # clock, so snapshots (or events, when the FIFO fills) may be lost, but never
    # unaccounted for
    await model.set_pins(0)
    while model.queue:
        model.check(await tb.pop())
    await tb.write("DROPPED", await tb.read("DROPPED"))  # a write subtracts: clears it
    base_seq = model.seq
    for burst in range(2):
        cycles = random.randint(4, 9) if stress else 8
        pins = 0
        t0 = tb.cycle() + 1
        for _ in range(cycles):
            pins ^= tb.in_mask
            await tb.drive_btn(pins)
        edges = cycles * n
        await ClockCycles(tb.clk, 5 * n + 30)  # snapshot queue (5) drains, n per snapshot
        dropped = await tb.read("DROPPED")
        waiting = await tb.read("FIFO_LEVEL")
        assert waiting + dropped == edges, (
            f"burst {burst}: {edges} edges, {waiting} waiting + {dropped} dropped"
        )
        assert waiting <= tb.capacity
        got = [await tb.pop() for _ in range(waiting)]
        assert (await tb.pop()).raw == 0
        seqs = [ev.seq - base_seq for ev in got]
        assert all(0 <= s < edges for s in seqs), f"seq out of range: {seqs}"
        assert seqs == sorted(set(seqs)), f"seq not strictly increasing: {seqs}"
        assert edges - len(seqs) == dropped, "sequence gaps must equal DROPPED"
        for ev, s in zip(got, seqs):
            snap = s // n  # the clock cycle of the burst this edge happened in
            assert ev.input == s % n, f"seq {ev.seq}: input {ev.input}, expected {s % n}"
            assert ev.level == (1 if snap % 2 == 0 else 0), f"seq {ev.seq}: level {ev.level}"
        # one timestamp per cycle, advancing with the cycles
        stamps = {}
        for ev, s in zip(got, seqs):
            stamps.setdefault(s // n, set()).add(ev.ts)
        assert all(len(v) == 1 for v in stamps.values()), f"timestamps {stamps}"
        snaps = sorted(stamps)
        ref_ts = next(iter(stamps[snaps[0]]))
        for snap in snaps:
            ts = next(iter(stamps[snap]))
            assert abs(ts - ref_ts - Fraction(snap - snaps[0], tb.ticks)) < 1, (
                f"snapshot {snap}: ts {ts}, first delivered {snaps[0]} ts {ref_ts}"
            )
        tb.log.info(
            "burst %d: %d cycles x %d inputs from cycle %d: %d delivered, %d dropped",
            burst, cycles, n, t0, len(got), dropped,
        )
        # clear DROPPED (a write subtracts, floor 0); the next edge continues the
        # sequence after the burst
        await tb.write("DROPPED", dropped + random.choice([0, 1, 1000, 0xFFFFFFFF - dropped]))
        assert await tb.read("DROPPED") == 0
        base_seq += edges
        model = EventModel(tb)
        model.pins, model.seq = pins, base_seq
        await model.toggle(random.randrange(n))
        got1 = await tb.pop()
        assert got1.seq == base_seq & 0xFFFF
        model.check(got1)
        await model.set_pins(0)
        while model.queue:
            model.check(await tb.pop())
        base_seq = model.seq
    assert await tb.read("DROPPED") == 0


@cocotb.test(timeout_time=TIMEOUT_US * 5, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_fifo_overflow(dut, stress):
    """A full FIFO drops exactly the excess; DROPPED counts it, seq shows it, writing back
    what was read clears it."""
    tb = TB(dut, stress)
    await tb.reset()
    await tb.write("IRQ_ENABLE", 1)
    model = EventModel(tb)
    n = tb.n_inputs
    cap = tb.capacity

    async def single_edges(count):
        # one edge every other clock: the serializer keeps up, only the FIFO can overflow
        for _ in range(count):
            await model.toggle(model.seq % n, settle=False)
            await ClockCycles(tb.clk, 1)
        await tb.wait_events_settled(1)

    x1 = random.randint(1, 5)
    await single_edges(cap + x1)
    assert model.dropped == x1
    assert await tb.read("FIFO_LEVEL") == cap, "FIFO capacity is FIFO_DEPTH + 1"
    assert await tb.read("DROPPED") == x1
    assert await tb.read("DROPPED") == x1, "reading DROPPED must not clear it"
    assert int(dut.irq.value) == 1

    # make room for two, then overflow again: DROPPED accumulates
    model.check(await tb.pop())
    model.check(await tb.pop())
    assert await tb.read("FIFO_LEVEL") == cap - 2
    x2 = random.randint(1, 4)
    await single_edges(2 + x2)
    assert await tb.read("FIFO_LEVEL") == cap
    assert await tb.read("DROPPED") == x1 + x2 == model.dropped

    # a write subtracts what it writes: 0 changes nothing, the value read clears it
    await tb.write_bytes(ADDR["DROPPED"] + random.randrange(4), b"\x00")
    assert await tb.read("DROPPED") == x1 + x2, "writing 0 subtracts nothing"
    await tb.write("DROPPED", x1)
    assert await tb.read("DROPPED") == x2
    await tb.write("DROPPED", x2)
    assert await tb.read("DROPPED") == 0
    await single_edges(1)
    assert await tb.read("DROPPED") == 1, "a loss after the clear counts again"
    # more than it holds: floor 0
    await tb.write("DROPPED", 0xFFFFFFFF)
    assert await tb.read("DROPPED") == 0

    # drain: seq 2..cap-1, then a gap of x1 (lost), the two accepted after the first
    # pops, then nothing more was accepted
    seqs = []
    while model.queue:
        got = await tb.pop()
        model.check(got)
        seqs.append(got.seq)
    assert seqs[: cap - 2] == list(range(2, cap))
    after = seqs[cap - 2 :]
    assert after == [cap + x1, cap + x1 + 1], f"after the first overflow (x1={x1}): {after}"
    assert (await tb.pop()).raw == 0
    await ClockCycles(tb.clk, 2)
    assert int(dut.irq.value) == 0

    # inputs keep being captured: the sequence resumes after every lost edge
    expected_next = cap + x1 + 2 + x2 + 1
    assert model.seq == expected_next
    await single_edges(3)
    assert await tb.read("FIFO_LEVEL") == 3
    got = await tb.pop()
    assert got.seq == expected_next
    model.check(got)
    await model.pop_all()
    assert await tb.read("DROPPED") == 0


# =====================================================================================
# LEDs and inputs
# =====================================================================================


@cocotb.test(timeout_time=TIMEOUT_US, timeout_unit="us")
@cocotb.parametrize(stress=STRESS)
async def test_led_and_inputs(dut, stress):
    """LED drives the led pins (N_LEDS bits, through the PWM output register: one clock
    later) and reads back; INPUTS shows the btn levels."""
    tb = TB(dut, stress)
    await tb.reset()

    assert int(dut.led.value) == 0
    values = [0xFFFFFFFF, 0, 0xA5A5A5A5, 0x5A5A5A5A]
    values += [random.getrandbits(32) for _ in range(6)]
    led = 0
    for value in values:
        await tb.write("LED", value)
        led = value & tb.led_mask
        await ClockCycles(tb.clk, 2)
        assert int(dut.led.value) == led, f"led pins after writing {value:#010x}"
        assert await tb.read("LED") == led
    # WSTRB: only the written byte changes
    await tb.write("LED", 0)
    led = 0
    for lane in range(4):
        byte = random.getrandbits(8) | 1
        await tb.write_bytes(ADDR["LED"] + lane, bytes([byte]))
        led = apply_strb(led, byte << 8 * lane, 1 << lane, tb.led_mask)
        await ClockCycles(tb.clk, 2)
        assert int(dut.led.value) == led
        assert await tb.read("LED") == led
    await tb.reset()
    assert int(dut.led.value) == 0, "LED resets to 0"
    assert await tb.read("LED") == 0

    patterns = [tb.in_mask, 0, 1, tb.in_mask >> 1]
    patterns += [random.getrandbits(tb.n_inputs) for _ in range(6)]
    edges, pins = 0, 0
    for pattern in patterns:
        await tb.drive_btn(pattern)
        edges += bin(pattern ^ pins).count("1")
        pins = pattern
        await ClockCycles(tb.clk, 3)
        assert await tb.read("INPUTS") == pattern, f"INPUTS with btn = {pattern:#x}"
    # every INPUTS change was an event too: each one is waiting or counted as dropped
    # (once the snapshot queue, up to 5 snapshots of N_INPUTS edges, has drained)
    await tb.wait_events_settled(5 * tb.n_inputs)
    waiting = await tb.read("FIFO_LEVEL")
    assert waiting + await tb.read("DROPPED") == edges
    if tb.n_inputs == 1:  # one edge per snapshot: only a full FIFO can lose one
        assert waiting == min(edges, tb.capacity)


# =====================================================================================
# pytest entry: build with Icarus and run every test above, for each parameter set
# =====================================================================================

@pytest.mark.parametrize("name", list(PARAM_SETS))
def test_pynq_mqtt_io_runner(name: str) -> None:
    run_bench("pynq_mqtt_io", "test_pynq_mqtt_io", f"core-{name}", PARAM_SETS[name])
