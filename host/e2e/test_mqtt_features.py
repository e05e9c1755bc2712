"""Payloads and topics, LED commands, the opt-in seed rule, Home Assistant discovery
and the stats message, each against both real brokers (mosquitto and the embedded
rumqttd), with an independent subscriber."""
import json
import signal
import subprocess
import time

import pytest

from mqtt_env import Collector, Daemon, Mosquitto, Pub, Rumqttd, stimulus

BROKERS = ["mosquitto", "rumqttd"]


@pytest.fixture(params=BROKERS)
def broker(request, binary, tmp_path):
    b = Mosquitto(tmp_path) if request.param == "mosquitto" else Rumqttd(binary, tmp_path)
    b.start()
    yield b
    b.stop()


def url(b):
    return f"mqtt://127.0.0.1:{b.port}"


def stop_ok(d):
    code = d.stop()
    assert code == 0, d.text()[-3000:]


def test_json_payloads_prefix_and_input_names(binary, broker, tmp_path):
    stim = tmp_path / "s.stim"
    stimulus(stim, 400, spacing_us=300, start_us=800_000)
    sub = Collector(broker.port, ("pynq/t1/#",))
    d = Daemon(binary, url(broker), tmp_path, "--prefix", "pynq/t1/", "--payload", "json",
               "--input-names", "btn0,btn1,sw0,sw1", "--stats-interval", "0", stimulus=stim)
    try:
        msgs = sub.wait_for(lambda m: sum(t.startswith("pynq/t1/button/") for t, _, _ in m) >= 400, 30)
        assert msgs, sub.snapshot()[-5:]
        names = ["btn0", "btn1", "sw0", "sw1"]
        per = {n: [] for n in names}
        for t, p, _ in msgs:
            if t.startswith("pynq/t1/button/"):
                per[t.rsplit("/", 1)[1]].append(json.loads(p))
        for i, n in enumerate(names):
            evs = per[n]
            assert len(evs) == 100, (n, len(evs))
            for k, e in enumerate(evs):
                assert set(e) == {"input", "state", "seq", "ts_us", "ts"}, e
                assert e["input"] == i and e["state"] == (k + 1) % 2, (n, k, e)
            assert all(a["seq"] < b["seq"] and a["ts_us"] < b["ts_us"] for a, b in zip(evs, evs[1:]))
        # 300 simulated microseconds between edges, as the hardware timestamps say
        allev = sorted((e for v in per.values() for e in v), key=lambda e: e["seq"])
        assert all(b["ts_us"] - a["ts_us"] == 300 for a, b in zip(allev, allev[1:]))
        assert ("pynq/t1/status", b"online") in [(t, p) for t, p, _ in msgs]
        assert not [t for t, _, _ in msgs if t.startswith("button/")], "no topics outside the prefix"
    finally:
        stop_ok(d)
        sub.close()


def test_button_topic_template(binary, broker, tmp_path):
    stim = tmp_path / "s.stim"
    stimulus(stim, 8, spacing_us=1000, start_us=800_000)
    sub = Collector(broker.port, ("#",))
    d = Daemon(binary, url(broker), tmp_path, "--button-topic", "in/{i}/{name}", "--input-names", "a,b",
               "--stats-interval", "0", stimulus=stim)
    try:
        msgs = sub.wait_for(lambda m: sum(t.startswith("in/") for t, _, _ in m) >= 8, 30)
        assert msgs
        topics = [t for t, _, _ in msgs if t.startswith("in/")]
        assert topics[:4] == ["in/0/a", "in/1/b", "in/2/2", "in/3/3"], topics
    finally:
        stop_ok(d)
        sub.close()


def led(msgs, name, mark=0):
    vals = [p for t, p, _ in msgs[mark:] if t == f"led/{name}"]
    return vals[-1] if vals else None


def test_led_commands_by_name_all_leds_and_rejections(binary, broker, sim_shape, tmp_path):
    sub = Collector(broker.port, ("led/#", "stats"))
    d = Daemon(binary, url(broker), tmp_path, "--led-names", "red,green,blue,yellow", "--stats-interval", "1")
    publish = Pub(broker.port)
    try:
        assert sub.wait_for(lambda m: all(led(m, n) == b"0" for n in ("red", "green", "blue", "yellow")), 20)
        mark = len(sub.snapshot())
        publish("led/green/set", "ON")
        assert sub.wait_for(lambda m: led(m, "green", mark) == b"1", 10), "led/green did not follow"
        mark = len(sub.snapshot())
        publish("led/set", "on")
        assert sub.wait_for(lambda m: all(led(m, n, mark) == b"1" for n in ("red", "blue", "yellow")), 10), \
            "led/set did not switch every LED on"
        mark = len(sub.snapshot())
        publish("led/set", "toggle")
        assert sub.wait_for(lambda m: all(led(m, n, mark) == b"0"
                                          for n in ("red", "green", "blue", "yellow")), 10)
        # rejected: unknown LED (names replace the index), bad words, too long, not UTF-8
        mark = len(sub.snapshot())
        bad = [("led/0/set", "on"), ("led/purple/set", "on"), ("led/red/set", "blink"),
               ("led/red/set", "1" * 17), ("led/red/set", b"\xff"), ("led/set", "maybe")]
        for topic, payload in bad:
            publish(topic, payload)
        publish("led/blue/set", "1")  # processed after the bad ones
        assert sub.wait_for(lambda m: led(m, "blue", mark) == b"1", 10)
        changed = [(t, p) for t, p, _ in sub.snapshot()[mark:] if t.startswith("led/") and not t.endswith("set")]
        assert changed == [("led/blue", b"1")], changed
        stats = sub.wait_for(lambda m: any(t == "stats" and json.loads(p)["led_commands"]["rejected"] == 6
                                           for t, p, _ in m), 10)
        assert stats, [p for t, p, _ in sub.snapshot() if t == "stats"][-1:]
    finally:
        publish.close()
        stop_ok(d)
        sub.close()
    assert d.text().count("LED command rejected") == 6, d.text()
    f = d.final()
    # one command, led/set twice (once per LED of the board), one command
    n_leds = sim_shape[1]
    assert f["rejected"] == 6 and f["led_commands"] == 1 + n_leds + n_leds + 1, f


def write_config(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("with_rule", [True, False])
def test_seed_rule_button0_toggles_all_leds_only_when_configured(binary, broker, sim_shape, tmp_path, with_rule):
    cfg = write_config(tmp_path / "c.toml",
                       "stats_interval = 0\n" + ("[[rule]]\ntopic = \"button/0\"\npayloads = [\"1\"]\n"
                                                 "action = \"toggle\"\nleds = \"all\"\n" if with_rule else ""))
    stim = tmp_path / "s.stim"
    # button 0 pressed and released twice, button 1 once (no effect)
    stim.write_text("500000 0 1\n600000 0 0\n700000 1 1\n800000 1 0\n1000000 0 1\n1100000 0 0\n")
    sub = Collector(broker.port, ("led/#", "button/#"))
    d = Daemon(binary, url(broker), tmp_path, "--config", cfg, stimulus=stim)
    try:
        assert sub.wait_for(lambda m: sum(t.startswith("button/") for t, _, _ in m) >= 6, 20)
        time.sleep(0.5)
        leds = [(t, p) for t, p, _ in sub.snapshot() if t.startswith("led/") and not t.endswith("set")]
        if with_rule:
            # two presses: on, then off again, for every LED
            for i in range(sim_shape[1]):
                vals = [p for t, p in leds if t == f"led/{i}"]
                assert vals == [b"0", b"1", b"0"], (i, vals)
        else:
            assert all(p == b"0" for _, p in leds) and len(leds) == sim_shape[1], leds
    finally:
        stop_ok(d)
        sub.close()


def retained_configs(port, expect=None):
    """Retained discovery configs a newcomer sees: {topic: payload}; waits for
    `expect` of them, or a while when none are expected."""
    c = Collector(port, ("homeassistant/#",))
    try:
        if expect:
            c.wait_for(lambda m: len([1 for _, p, r in m if r and p]) >= expect, 10)
        else:
            time.sleep(1.5)
        return {t: p for t, p, r in c.snapshot() if r and p}
    finally:
        c.close()


def test_home_assistant_discovery_birth_and_removal(binary, broker, sim_shape, tmp_path):
    args = ["--ha-discovery", "true", "--client-id", "pynq-ha-test", "--input-names", "btn0,btn1,btn2,btn3"]
    d = Daemon(binary, url(broker), tmp_path, *args, "--stats-interval", "0")
    try:
        assert d.wait_log("connected to broker")
        sub = Collector(broker.port, ("homeassistant/#", "status", "led/#"))
        publish = Pub(broker.port)
        n_inputs, n_leds = sim_shape
        got = sub.wait_for(lambda m: len({t for t, p, r in m if t.endswith("/config") and p}) >= n_inputs + n_leds, 15)
        assert got, [t for t, _, _ in sub.snapshot()]
        configs = {t: json.loads(p) for t, p, r in got if t.endswith("/config") and p}
        sensors = sorted(t for t in configs if "/binary_sensor/" in t)
        switches = sorted(t for t in configs if "/switch/" in t)
        # the four named inputs by name, any further input by its number
        assert sensors == sorted([f"homeassistant/binary_sensor/pynq-ha-test/in_btn{i}/config" for i in range(4)]
                                 + [f"homeassistant/binary_sensor/pynq-ha-test/in_{i}/config"
                                    for i in range(4, n_inputs)])
        assert switches == sorted(f"homeassistant/switch/pynq-ha-test/led_{i}/config" for i in range(n_leds))
        for c in configs.values():
            assert c["availability_topic"] == "status" and c["payload_available"] == "online", c
            assert c["device"]["identifiers"] == ["pynq-ha-test"], c
        assert configs["homeassistant/binary_sensor/pynq-ha-test/in_btn0/config"]["state_topic"] == "input/btn0"
        sw = configs[switches[2]]
        assert sw["command_topic"] == "led/2/set" and sw["state_topic"] == "led/2"
        assert all(r for t, p, r in got if t.endswith("/config")), "configs are retained"
        # Home Assistant restarts: every config is sent again
        mark = len(sub.snapshot())
        publish("homeassistant/status", "online", qos=1)
        again = sub.wait_for(lambda m: len({t for t, p, r in m[mark:] if t.endswith("/config") and p})
                             >= n_inputs + n_leds, 15)
        assert again, "configs not sent again after homeassistant/status online"
        # the switch works as Home Assistant would use it
        mark = len(sub.snapshot())
        publish(sw["command_topic"], sw["payload_on"])
        assert sub.wait_for(lambda m: any(t == "led/2" and p == b"1" for t, p, _ in m[mark:]), 10)
        sub.close()
        publish.close()
    finally:
        stop_ok(d)
    assert len(retained_configs(broker.port, n_inputs + n_leds)) == n_inputs + n_leds
    r = subprocess.run([str(binary), "run", "--board", "sim", "--broker", url(broker), *args, "--ha-remove"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "discovery configs removed" in r.stderr and f"configs={n_inputs + n_leds}" in r.stderr, r.stderr
    assert retained_configs(broker.port) == {}, "configs still retained after --ha-remove"


def test_stats_message(binary, broker, tmp_path):
    stim = tmp_path / "s.stim"
    stimulus(stim, 200, spacing_us=1000, start_us=500_000)
    sub = Collector(broker.port, ("stats", "button/#"))
    d = Daemon(binary, url(broker), tmp_path, "--stats-interval", "1", stimulus=stim)
    try:
        msgs = sub.wait_for(lambda m: any(t == "stats" and json.loads(p)["published"] == 200 for t, p, _ in m), 20)
        assert msgs, [p for t, p, _ in sub.snapshot() if t == "stats"]
        s = [json.loads(p) for t, p, _ in msgs if t == "stats"][-1]
        assert s["captured"] == 200 and s["buffered"] == 0, s
        assert s["dropped"] == {"hardware_fifo": 0, "sequence_gaps": 0, "channel": 0, "retry_buffer": 0,
                                "shutdown": 0, "unacknowledged": 0, "broker_refused": 0}, s
        assert s["broker"]["connects"] == 1 and s["broker"]["reconnects"] == 0, s
        assert set(s["rates"]) == {"captured_per_s", "published_per_s"}, s
        assert s["writes"] >= 1 and s["uptime_s"] >= 0
        # periodic: more than one arrives
        n = len([1 for t, _, _ in msgs if t == "stats"])
        assert sub.wait_for(lambda m: len([1 for t, _, _ in m if t == "stats"]) > n, 5)
    finally:
        stop_ok(d)
        sub.close()


def test_stats_off_with_zero_interval(binary, broker, tmp_path):
    sub = Collector(broker.port, ("stats",))
    d = Daemon(binary, url(broker), tmp_path, "--stats-interval", "0")
    try:
        assert d.wait_log("connected to broker")
        time.sleep(2.0)
        assert sub.snapshot() == []
    finally:
        stop_ok(d)
        sub.close()


def test_a_retained_command_too_large_to_read_is_skipped_not_a_reconnect_loop(binary, tmp_path):
    """A 2 MiB retained message on led/0/set (beyond the 1 MiB the bridge reads) is
    refused once and acknowledged; it does not break the connection, not even when
    the broker hands it again at every subscription. (mosquitto only: the embedded
    rumqttd refuses payloads above 64 KiB itself.)"""
    broker = Mosquitto(tmp_path).start()
    publish = Pub(broker.port)
    sub = Collector(broker.port, ("led/#",))
    try:
        publish("led/0/set", b"x" * (2 << 20), qos=1, retain=True)
        for run in range(2):
            d = Daemon(binary, url(broker), tmp_path, "--stats-interval", "0", name=f"d{run}")
            try:
                assert d.wait_log("message of", 20), d.text()
                mark = len(sub.snapshot())
                publish("led/3/set", "on")
                assert sub.wait_for(lambda m: ("led/3", b"1") in [(t, p) for t, p, _ in m[mark:]], 10)
            finally:
                assert d.stop() == 0
            f = d.final()
            assert f["reconnects"] == 0 and f["rejected"] == 1, f
            assert "LED command rejected: message of" in d.text() and "too large" in d.text()
            publish("led/3/set", "off")
    finally:
        publish.close()
        sub.close()
        broker.stop()
