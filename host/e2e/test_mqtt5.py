"""Issue 15 point 4: MQTT 5 (`--protocol 5`) against a real mosquitto, and the
embedded broker taking MQTT 5 clients. The QoS 0/1/2 and restart tests of both
protocols are in test_end_to_end.py and test_mqtt_reliability.py. (mosquitto 2.0.11
sends an MQTT 5 client no DISCONNECT on a takeover or its own shutdown, it closes: the
DISCONNECT reason is held by the session's unit tests.)"""
import signal
import subprocess
import time

import paho.mqtt.client as mqtt

from mqtt_env import Collector, Daemon, Mosquitto, Proxy, Rumqttd, check_events, events, expected_exit, stimulus

BURST = 400


def url(b):
    return f"mqtt://127.0.0.1:{b.port}"


def test_the_receive_maximum_makes_a_large_window_exactly_once(binary, tmp_path):
    """The 3.1.1 twin (test_a_window_the_broker_cannot_take_shrinks_instead_of_looping)
    lets a window of 1024 overrun mosquitto's 20 QoS 2 messages: reconnects, and up to
    20 events acknowledged and dropped. In MQTT 5 mosquitto announces that 20 as its
    Receive Maximum, and the daemon keeps under it: no reconnect, every event exactly
    once."""
    broker = Mosquitto(tmp_path, config="unqueued").start()
    stim = tmp_path / "burst.stim"
    stimulus(stim, BURST, burst=BURST, start_us=500_000)
    sub = Collector(broker.port, ("button/#",), qos=2)
    d = Daemon(binary, url(broker), tmp_path, "--protocol", "5", "--qos", "2", "--payload", "json",
               "--stats-interval", "0", "--max-inflight", "1024", "--reconnect-min", "0.05",
               "--shutdown-timeout", "20", stimulus=stim)
    try:
        sub.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= BURST, 20)
        time.sleep(0.5)
        assert d.stop(timeout=60) == 0, d.text()[-3000:]
        f = d.final()
        got = events(sub.snapshot())
        print(f"unqueued QoS 2, window 1024, MQTT 5: published={f['published']} delivered="
              f"{len({e['seq'] for e in got})} lost={f['lost']} reconnects={f['reconnects']}")
        assert f["published"] == BURST and f["lost"] == 0 and f["reconnects"] == 0, f
        check_events(got, BURST, allow_duplicates=False)
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


def test_nothing_over_the_maximum_packet_size_is_sent_and_what_is_not_is_counted(binary, tmp_path):
    """mosquitto takes packets of at most 300 bytes and says so in its CONNACK: the
    discovery configs (over 400 bytes) are not sent, each counted and logged
    (rate-limited), and the events (under 300) all arrive on the same connection.
    (Under 3.1.1 mosquitto closes the connection on the first config instead.)"""
    broker = Mosquitto(tmp_path, extra="max_packet_size 300\n").start()
    stim = tmp_path / "s.stim"
    stimulus(stim, 200, spacing_us=500, start_us=800_000)
    sub = Collector(broker.port, ("button/#", "homeassistant/#"))
    d = Daemon(binary, url(broker), tmp_path, "--protocol", "5", "--qos", "1", "--payload", "json",
               "--ha-discovery", "true", "--stats-interval", "0", stimulus=stim)
    try:
        assert sub.wait_for(lambda m: len(events(m)) >= 200, 30), d.text()[-2000:]
        code = d.stop()
        f = d.final()
        assert code == expected_exit(f) == 0, d.text()[-3000:]
        assert f["control_too_large"] >= 8 and f["reconnects"] == 0 and f["published"] == 200, f
        assert not [t for t, _, _ in sub.snapshot() if t.startswith("homeassistant/")]
        lines = [l for l in d.text().splitlines() if "packet larger than the broker takes" in l]
        assert 8 <= len(lines) <= 11, lines
        assert "max=300" in lines[0], lines[0]
        assert "exceeded" not in broker.logs().lower(), broker.logs()[-2000:]
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


def test_a_refusal_is_logged_with_its_reason_code(binary, tmp_path):
    broker = Mosquitto(tmp_path, listener_opts="allow_anonymous false\n").start()
    d = Daemon(binary, url(broker), tmp_path, "--protocol", "5", "--stats-interval", "0")
    try:
        code = d.wait(30)
        text = d.text()
        assert code != 0, text[-2000:]
        assert "Not authorized (CONNACK reason code 0x87)" in text, text[-2000:]
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


def test_a_persistent_mqtt5_session_outlives_the_connection(binary, tmp_path):
    """Session Expiry Interval: without it an MQTT 5 session ends with its connection.
    The link is cut under a persistent session: mosquitto still has the session at
    the reconnect (session present). Under `--session clean` it has none."""
    broker = Mosquitto(tmp_path).start()
    proxy = Proxy(broker.port)
    try:
        for session, present in (("persistent", "true"), ("clean", "false")):
            d = Daemon(binary, f"mqtt://127.0.0.1:{proxy.port}", tmp_path, "--protocol", "5",
                       "--session", session, "--stats-interval", "0", "--reconnect-min", "0.05",
                       name=session)
            try:
                assert d.wait_log("connected to broker", 15), d.text()[-2000:]
                time.sleep(0.3)
                proxy.cut()
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and d.text().count("connected to broker") < 2:
                    time.sleep(0.05)
                lines = [l for l in d.text().splitlines() if "connected to broker" in l]
                assert len(lines) >= 2, d.text()[-2000:]
                assert f"session_present={present}" in lines[-1], (session, lines)
            finally:
                d.stop()
    finally:
        proxy.close()
        broker.stop()


def test_the_embedded_broker_takes_mqtt5_clients(binary, tmp_path):
    """mosquitto_sub -V mqttv5 against the embedded broker gets the daemon's events,
    from a 3.1.1 daemon and from an MQTT 5 one."""
    broker = Rumqttd(binary, tmp_path).start()
    out = open(tmp_path / "sub.txt", "w")
    sub = subprocess.Popen(["mosquitto_sub", "-V", "mqttv5", "-p", str(broker.port), "-q", "1",
                            "-t", "button/#", "-v"], stdout=out, stderr=subprocess.STDOUT)
    try:
        time.sleep(0.5)
        for protocol in ("3.1.1", "5"):
            stim = tmp_path / f"s{protocol}.stim"
            stimulus(stim, 100, spacing_us=500, start_us=300_000)
            d = Daemon(binary, url(broker), tmp_path, "--protocol", protocol, "--qos", "1",
                       "--stats-interval", "0", stimulus=stim, speed="fast", name=f"d{protocol}")
            deadline = time.monotonic() + 20
            want = 100 if protocol == "3.1.1" else 200
            while time.monotonic() < deadline and (tmp_path / "sub.txt").read_text().count("button/") < want:
                time.sleep(0.1)
            assert d.stop() == 0, d.text()[-2000:]
            f = d.final()
            assert f["published"] == 100 and f["reconnects"] == 0, f
        text = (tmp_path / "sub.txt").read_text()
        assert text.count("button/") == 200, text[-500:]
        assert "Connection lost" not in text and sub.poll() is None, text[-500:]
    finally:
        sub.send_signal(signal.SIGTERM)
        sub.wait(10)
        out.close()
        broker.stop()
