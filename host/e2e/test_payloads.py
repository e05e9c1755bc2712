"""The ecosystem's payload habits (issue 15, point 3), against mosquitto and the
Verilated RTL: the command words and JSON states drive the LEDs, an empty payload or
`led/<i>/get` publishes the state again (a retained one is ignored), `state_format =
onoff` reads ON/OFF on `led/<i>`, `button/<i>` and in discovery, and JSON button
payloads carry `ts` (UTC) next to `ts_us`."""
import datetime
import json
import signal
import time

import paho.mqtt.client as mqtt

from conftest import publish
from mqtt_env import Collector, Daemon, Mosquitto, stimulus


def led_msgs(messages, led, since=0):
    return [p for t, p, _ in messages[since:] if t == f"led/{led}"]


def test_words_json_and_queries_drive_and_report_the_leds(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    sub = Collector(broker.port, ("led/#",), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0")
    try:
        assert sub.wait_for(lambda m: all(led_msgs(m, i) for i in range(4)), 20), d.text()[-2000:]
        # each command, then the state LED 0 must read back
        for payload, want in [("ON", b"1"), ("off", b"0"), ("true", b"1"), ("FALSE", b"0"),
                              ('{"state":"ON"}', b"1"), ('{"state": "TOGGLE"}', b"0"),
                              ("Toggle", b"1"), ('{"state":"off"}', b"0")]:
            mark = len(sub.snapshot())
            publish(broker.port, "led/0/set", payload)
            got = sub.wait_for(lambda m: want in led_msgs(m, 0, mark), 10)
            assert got, f"{payload!r}: {led_msgs(sub.snapshot(), 0, mark)}\n{d.text()[-2000:]}"
        # questions: an empty command and led/<i>/get publish the state again
        publish(broker.port, "led/1/set", "on")
        assert sub.wait_for(lambda m: led_msgs(m, 1)[-1:] == [b"1"], 10)
        for topic in ("led/1/set", "led/1/get"):
            mark = len(sub.snapshot())
            publish(broker.port, topic, "")
            assert sub.wait_for(lambda m: led_msgs(m, 1, mark) == [b"1"], 10), (topic, d.text()[-2000:])
        mark = len(sub.snapshot())
        publish(broker.port, "led/set", "")
        assert sub.wait_for(lambda m: all(led_msgs(m, i, mark) for i in range(4)), 10)
        # a retained question is not answered, now or at the next subscription
        time.sleep(0.5)
        mark = len(sub.snapshot())
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-retained-get")
        c.connect("127.0.0.1", broker.port)
        c.loop_start()
        c.publish("led/2/get", b"x", qos=1, retain=True).wait_for_publish(5)
        c.loop_stop()
        c.disconnect()
        code = d.stop()
        assert code == 0, d.text()[-2000:]
        d2 = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
                    name="daemon2")
        try:
            assert d2.wait_log("retained LED command ignored", 20), d2.text()[-2000:]
            time.sleep(1.0)
        finally:
            assert d2.stop() == 0, d2.text()[-2000:]
        # the live copy of the retained message reached the first daemon as a plain
        # one (brokers clear the flag on live delivery): at most that one answer, plus
        # the second daemon's own announcement at connect
        n = len(led_msgs(sub.snapshot(), 2, mark))
        assert n <= 2, led_msgs(sub.snapshot(), 2, mark)
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


def test_state_format_onoff_and_json_ts(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "s.stim"
    stimulus(stim, 8, spacing_us=20_000, start_us=1_000_000)
    sub = Collector(broker.port, ("led/#", "button/#", "homeassistant/#"), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
               "--state-format", "onoff", "--ha-discovery", "true", stimulus=stim)
    try:
        assert sub.wait_for(lambda m: sum(t.startswith("button/") for t, _, _ in m) >= 8, 30), d.text()[-2000:]
        publish(broker.port, "led/0/set", "on")
        assert sub.wait_for(lambda m: b"ON" in led_msgs(m, 0), 10), d.text()[-2000:]
        m = sub.snapshot()
        buttons = {p for t, p, _ in m if t.startswith("button/")}
        assert buttons == {b"ON", b"OFF"}, buttons
        leds = {p for t, p, _ in m if t.startswith("led/") and t.count("/") == 1}
        assert leds <= {b"ON", b"OFF"}, leds
        configs = [json.loads(p) for t, p, _ in m if t.endswith("/config")]
        assert configs and all(c["payload_on"] == "ON" and c["payload_off"] == "OFF" for c in configs)
        assert all(c["state_on"] == "ON" for c in configs if "command_topic" in c)
    finally:
        assert d.stop() == 0, d.text()[-2000:]
        sub.close()

    # JSON: `ts` is UTC with microseconds, `ts_us` stays
    sub = Collector(broker.port, ("button/#",), qos=1)
    before = datetime.datetime.now(datetime.timezone.utc)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
               "--payload", "json", stimulus=stim, name="daemon-json")
    try:
        assert sub.wait_for(lambda m: len(m) >= 8, 30), d.text()[-2000:]
        after = datetime.datetime.now(datetime.timezone.utc)
        evs = [json.loads(p) for _, p, _ in sub.snapshot()]
        for e in evs:
            assert isinstance(e["ts_us"], int), e
            assert e["ts"].endswith("Z") and len(e["ts"]) == 27, e
            ts = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc)
            assert before - datetime.timedelta(seconds=1) <= ts <= after, (e, before, after)
        # the wall-clock gaps between events are the hardware's gaps
        evs.sort(key=lambda e: e["seq"])
        for a, b in zip(evs, evs[1:]):
            ta = datetime.datetime.strptime(a["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
            tb = datetime.datetime.strptime(b["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
            wall = (tb - ta) / datetime.timedelta(microseconds=1)
            assert abs(wall - (b["ts_us"] - a["ts_us"])) < 20_000, (a, b)
        print("ts of the first event:", evs[0]["ts"], "ts_us", evs[0]["ts_us"])
    finally:
        assert d.stop() == 0, d.text()[-2000:]
        sub.close()
        broker.stop()
