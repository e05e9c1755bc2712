"""Each input's level, retained on `<prefix>input/<name>` (issue 15, point 10): read
from the peripheral's INPUTS register at start, followed by every edge, published
again when Home Assistant announces itself, and used by the discovery configs, so
Home Assistant never shows `unknown` for a switch that has not moved. Against a real
mosquitto, the daemon on the Verilated RTL, an independent subscriber."""
import json
import time

from mqtt_env import Collector, Daemon, Mosquitto, Pub

def url(b):
    return f"mqtt://127.0.0.1:{b.port}"


def stop_ok(d):
    code = d.stop()
    assert code == 0, d.text()[-3000:]


def retained(port, filters, expect, timeout=10):
    """What a newcomer (Home Assistant after its restart) gets on subscribing:
    {topic: payload} of the retained messages, once `expect` topics are there."""
    c = Collector(port, filters)
    try:
        c.wait_for(lambda m: len({t for t, p, r in m if r and p}) >= expect, timeout)
        return {t: p for t, p, r in c.snapshot() if r and p}
    finally:
        c.close()


def retained_until(port, filters, want, timeout=10):
    """The retained messages a newcomer gets, asked again until they are `want`."""
    deadline = time.monotonic() + timeout
    while True:
        got = retained(port, filters, len(want))
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_levels_are_retained_from_the_start_and_follow_edges(binary, sim_shape, tmp_path):
    n_inputs = sim_shape[0]
    broker = Mosquitto(tmp_path).start()
    sub = Collector(broker.port, ("input/#", "button/#"))
    stim = tmp_path / "switch.stim"
    # input 3 is a switch, moved up 5 s into the run; input 1 is pressed and released
    stim.write_text("5000000 3 1\n5500000 1 1\n5600000 1 0\n")
    d = Daemon(binary, url(broker), tmp_path, "--stats-interval", "0", stimulus=stim)
    try:
        got = sub.wait_for(lambda m: len({t for t, _, _ in m if t.startswith("input/")}) == n_inputs, 15)
        assert got, d.text()[-2000:]
        # before any edge: every level is known, from the register, and retained
        assert not [t for t, _, _ in got if t.startswith("button/")], got
        before = retained(broker.port, ("input/#",), n_inputs)
        assert before == {f"input/{i}": b"0" for i in range(n_inputs)}, before
        # the switch moves: its retained level follows the edge
        assert sub.wait_for(lambda m: ("button/1", b"0", False) in m, 20), sub.snapshot()
        after = retained(broker.port, ("input/#",), n_inputs)
        assert after == {f"input/{i}": b"1" if i == 3 else b"0" for i in range(n_inputs)}, after
        # the edges themselves are unchanged: one message per edge on button/<i>
        edges = [(t, p) for t, p, _ in sub.snapshot() if t.startswith("button/")]
        assert edges == [("button/3", b"1"), ("button/1", b"1"), ("button/1", b"0")], edges
        # the press of input 1 went through its level too, in order
        ones = [p for t, p, _ in sub.snapshot() if t == "input/1"]
        assert ones[0] == b"0" and ones[-1] == b"0" and b"1" in ones, ones
    finally:
        stop_ok(d)
        sub.close()
        broker.stop()


def test_a_switch_up_is_on_for_home_assistant_after_its_restart(binary, sim_shape, tmp_path):
    n_inputs, n_leds = sim_shape
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "up.stim"
    # the switch is up from the start of the run and never moves again
    stim.write_text("0 2 1\n")
    args = ["--ha-discovery", "true", "--state-format", "onoff", "--stats-interval", "0",
            "--input-names", "btn0,btn1,mode,btn3", "--led-names", "red,ld1,ld2,ld3"]
    d = Daemon(binary, url(broker), tmp_path, *args, stimulus=stim)
    publish = Pub(broker.port)
    try:
        assert d.wait_log("connected to broker")
        configs = retained(broker.port, ("homeassistant/#",), n_inputs + n_leds)
        configs = {t: json.loads(p) for t, p in configs.items()}
        mode = configs["homeassistant/binary_sensor/pynq-mqtt-sim/in_mode/config"]
        # discovery names the entity after the input and reads the retained level
        assert mode["name"] == "mode", mode
        assert mode["state_topic"] == "input/mode", mode
        assert (mode["payload_on"], mode["payload_off"]) == ("ON", "OFF"), mode
        assert "value_template" not in mode, mode
        assert mode["default_entity_id"] == "binary_sensor.pynq_sim_mode", mode
        assert mode["unique_id"] == "pynq-mqtt-sim_in_mode", mode
        assert mode["device"]["name"] == "PYNQ sim", mode
        red = configs["homeassistant/switch/pynq-mqtt-sim/led_red/config"]
        assert red["name"] == "red" and red["default_entity_id"] == "switch.pynq_sim_red", red
        ids = [c["default_entity_id"] for c in configs.values()]
        assert len(set(ids)) == n_inputs + n_leds and not [i for i in ids if "pynq_pynq" in i], ids
        # Home Assistant, restarted, subscribes: the switch is ON at once, no edge needed
        want = {"input/btn0": b"OFF", "input/btn1": b"OFF", "input/mode": b"ON", "input/btn3": b"OFF"}
        want.update({f"input/{i}": b"OFF" for i in range(4, n_inputs)})
        levels = retained_until(broker.port, ("input/#",), want)
        assert levels == want, levels
        # and its birth message makes the daemon say every level again
        ha = Collector(broker.port, ("input/#",))
        ha.wait_for(lambda m: len(m) >= n_inputs, 10)
        mark = len(ha.snapshot())
        publish("homeassistant/status", "online", qos=1)
        again = ha.wait_for(lambda m: len({t for t, _, _ in m[mark:]}) >= n_inputs, 15)
        assert again, (ha.snapshot(), d.text()[-2000:])
        fresh = {t: p for t, p, _ in again[mark:]}
        assert fresh == levels, fresh
        ha.close()
    finally:
        publish.close()
        stop_ok(d)
        broker.stop()
