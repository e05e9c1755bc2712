"""End to end on the simulated base overlay (`--board base-sim`): the Verilated MODELS
of PYNQ's base overlay (AXI GPIO and AXI INTC written from PG144/PG099, not Xilinx's
IP) -> the base-overlay driver -> MQTT -> an independent subscriber, and LED commands
back to the pins. The same checks as for our overlay where the base overlay can meet
them: the seed workflow (button/0-5, led/0-9), availability, software debounce with
bounce counted, and a press shorter than the interrupt latency counted as missed."""
import json
import signal
import subprocess

import pytest

from conftest import Subscriber, publish

N_INPUTS = 6


def start(binary, port, stimulus, tmp_path, *extra, speed="fast", board="z1"):
    log = open(tmp_path / "daemon.log", "w")
    proc = subprocess.Popen(
        [str(binary), "run", "--board", "base-sim", "--pynq-board", board,
         "--broker", f"mqtt://127.0.0.1:{port}", "--stimulus", str(stimulus),
         "--sim-speed", speed, *extra],
        stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def stop(proc, log, tmp_path):
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    log.close()
    return code, (tmp_path / "daemon.log").read_text()


def buttons(messages):
    out = {i: [] for i in range(N_INPUTS)}
    for topic, payload, _ in messages:
        if topic.startswith("button/"):
            out[int(topic.split("/")[1])].append(payload)
    return out


def last(messages, topic):
    vals = [p for t, p, _ in messages if t == topic]
    return vals[-1] if vals else None


def stats(messages):
    vals = [json.loads(p) for t, p, _ in messages if t == "stats"]
    return vals[-1] if vals else None


@pytest.mark.parametrize("board", ["z1", "z2"])
def test_seed_workflow_on_the_base_overlay_models(binary, mosquitto, subscriber_factory, tmp_path, board):
    # 300 edges on BTN0-3 and SW0-1, 500 simulated µs apart (two inputs at once now and
    # then): one wake of the driver takes some 50 bus cycles of the simulated 1 MHz clock
    level = [0] * N_INPUTS
    expect = {i: [] for i in range(N_INPUTS)}
    lines, t = [], 1000
    for k in range(300):
        for i in ([k % N_INPUTS, (k + 3) % N_INPUTS] if k % 7 == 0 else [(k * 5) % N_INPUTS]):
            level[i] ^= 1
            lines.append(f"{t} {i} {level[i]}")
            expect[i].append(str(level[i]).encode())
        t += 500
    stim = tmp_path / "edges.stim"
    stim.write_text("\n".join(lines) + "\n")
    n = sum(len(v) for v in expect.values())
    sub = subscriber_factory(mosquitto)
    proc, log = start(binary, mosquitto, stim, tmp_path, "--soft-debounce-us", "0", "--stats-interval", "1",
                      board=board)
    try:
        got = sub.wait_for(lambda m: sum(len(v) for v in buttons(m).values()) >= n, 60)
        assert got is not None, f"{sum(len(v) for v in buttons(sub.snapshot()).values())} of {n} edges"
        per_input = buttons(sub.snapshot())
        for i in range(N_INPUTS):
            assert per_input[i] == expect[i], f"input {i}"
        assert last(sub.snapshot(), "status") == b"online"
        # LEDs: LD0 (leds_gpio) and LD4 red, LD5 blue (rgbleds_gpio bits 2 and 3)
        for led in (0, 6, 7):
            assert sub.wait_for(lambda m, led=led: last(m, f"led/{led}") == b"0", 10), f"led/{led} initial"
            mark = len(sub.snapshot())
            publish(mosquitto, f"led/{led}/set", "on")
            assert sub.wait_for(lambda m, led=led, mark=mark: any(
                t == f"led/{led}" and p == b"1" for t, p, _ in m[mark:]), 10), f"led/{led} on"
        mark = len(sub.snapshot())
        publish(mosquitto, "led/6/set", "toggle")
        assert sub.wait_for(lambda m: any(t == "led/6" and p == b"0" for t, p, _ in m[mark:]), 10)
        publish(mosquitto, "led/10/set", "on")  # no such LED: rejected
        s = sub.wait_for(lambda m: (stats(m) or {}).get("captured", 0) >= n, 20)
        assert s is not None, stats(sub.snapshot())
        st = stats(s)
        assert st["base"] == {"bounces": 0, "missed_pulses": 0, "foreign_irqs": 0, "intc_reenabled": 0}, st
        assert st["dropped"]["channel"] == 0 and st["published"] >= n, st
    finally:
        code, text = stop(proc, log, tmp_path)
    assert code == 0, text
    assert sub.wait_for(lambda m: last(m, "status") == b"offline", 10)
    late = Subscriber(mosquitto, ("status",))
    try:
        assert late.wait_for(lambda m: b"offline" in [p for t, p, r in m if r], 10)
    finally:
        late.close()


def test_bounce_is_debounced_and_a_short_press_is_counted_missed(binary, mosquitto, subscriber_factory, tmp_path):
    # real time (the software lockout of 50 ms runs on the host's clock): BTN0 bounces from
    # 20 ms after its first contact on press and release, 4 ms between contacts (the
    # simulated clock advances in steps of about 1 ms, so contacts closer than that, or
    # closer to the first contact than the host's latency, would be missed presses);
    # BTN2 is high for 2 µs, far shorter than the interrupt latency
    stim = tmp_path / "bounce.stim"
    press = [(300_000, 0, 1)] + [(320_000 + k * 4000, 0, lvl) for k, lvl in enumerate([0, 1, 0, 1])]
    release = [(600_000, 0, 0)] + [(620_000 + k * 4000, 0, lvl) for k, lvl in enumerate([1, 0])]
    pulse = [(900_000, 2, 1), (900_002, 2, 0)]
    stim.write_text("".join(f"{t} {i} {lvl}\n" for t, i, lvl in press + release + pulse))
    sub = subscriber_factory(mosquitto)
    proc, log = start(binary, mosquitto, stim, tmp_path, "--soft-debounce-us", "50000",
                      "--stats-interval", "1", speed="realtime")
    try:
        got = sub.wait_for(lambda m: (stats(m) or {}).get("base", {}).get("missed_pulses", 0) >= 1, 30)
        assert got is not None, stats(sub.snapshot())
        # a stats message after the release's lockout has ended
        sub.wait_for(lambda m: len([1 for t, _, _ in m if t == "stats"]) >= 3, 10)
        m = sub.snapshot()
        assert buttons(m)[0] == [b"1", b"0"], "one press, one release"
        assert buttons(m)[2] == [], "nothing invented for the missed press"
        st = stats(m)
        assert st["base"]["missed_pulses"] == 1, st
        assert st["base"]["bounces"] >= 2, st
        assert st["captured"] == 2, st
    finally:
        code, text = stop(proc, log, tmp_path)
    assert code == 0, text
    assert "missed_pulses" in text, "the missed press is logged"
