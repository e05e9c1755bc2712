"""`--http`: /metrics against what an independent subscriber on a real mosquitto saw,
and the settings that guard the page's control."""
import subprocess
import time
import urllib.error
import urllib.request

from conftest import Subscriber, free_port, publish
from mqtt_env import Daemon, stimulus
from web_env import get, metric, parse_metrics, wait_http


def test_metrics_agree_with_the_subscriber_and_the_final_line(binary, mosquitto, tmp_path):
    n = 600
    stim = tmp_path / "stim.txt"
    stimulus(stim, n, spacing_us=50)
    http = free_port()
    sub = Subscriber(mosquitto, ("button/#", "led/#"))
    d = Daemon(binary, f"mqtt://127.0.0.1:{mosquitto}", tmp_path, "--qos", "1",
               "--stats-interval", "0", "--http", http, stimulus=stim, speed="fast")
    try:
        info = wait_http(http)
        buttons = lambda ms: [m for m in ms if m[0].startswith("button/")]
        got = sub.wait_for(lambda ms: len(buttons(ms)) >= n, timeout=60)
        assert got is not None, f"{len(buttons(sub.snapshot()))} of {n} button messages"
        publish(mosquitto, "led/1/set", "on")
        assert sub.wait_for(lambda ms: ("led/1", b"1", False) in ms, timeout=20), sub.snapshot()[-5:]

        ctype, text = get(http, "/metrics")
        assert ctype.startswith("application/openmetrics-text"), ctype
        m = parse_metrics(text)
        seen = len(buttons(sub.snapshot()))
        assert metric(m, "pynq_mqtt_events_captured_total") == n
        assert metric(m, "pynq_mqtt_events_published_total") == seen == n
        for cause in ("hardware_fifo", "channel", "retry_buffer", "shutdown", "unacknowledged",
                      "sequence_gaps"):
            assert metric(m, "pynq_mqtt_events_dropped_total", cause=cause) == 0, cause
        assert metric(m, "pynq_mqtt_led_commands_total", result="accepted") == 1
        assert metric(m, "pynq_mqtt_led_commands_total", result="rejected") == 0
        assert metric(m, "pynq_mqtt_led_on", led=1) == 1
        assert metric(m, "pynq_mqtt_led_on", led=0) == 0
        # the stimulus toggles inputs round-robin: each ends at its level after n/4 flips
        per_input = n // info["n_inputs"] if n % info["n_inputs"] == 0 else None
        for i in range(4):
            flips = len([k for k in range(n) if k % 4 == i])
            assert metric(m, "pynq_mqtt_input_pressed", input=i) == flips % 2, i
        assert per_input is None or per_input > 0
        assert metric(m, "pynq_mqtt_broker_connected") == 1
        assert metric(m, "pynq_mqtt_broker_connects_total") == 1
        assert metric(m, "pynq_mqtt_inflight_max") == 16
        assert 1 <= metric(m, "pynq_mqtt_inflight_window") <= 16
        assert metric(m, "pynq_mqtt_inflight_events") == 0, "everything was acknowledged"
        assert metric(m, "pynq_mqtt_channel_events") == 0
        assert metric(m, "pynq_mqtt_retry_buffer_events") == 0
        # one latency sample per batch that carried events: at least one, at most one
        # per write, and the buckets add up to the count
        count = metric(m, "pynq_mqtt_drain_to_socket_seconds_count")
        assert 1 <= count <= metric(m, "pynq_mqtt_socket_writes_total")
        assert metric(m, "pynq_mqtt_drain_to_socket_seconds_bucket", le="+Inf") == count
        assert 0 < metric(m, "pynq_mqtt_drain_to_socket_seconds_sum") < count * 10
        assert metric(m, "pynq_mqtt_socket_written_bytes_total") > n * len("button/0")
    finally:
        code = d.stop()
        sub.close()
    assert code == 0, d.text()[-2000:]
    f = d.final()
    assert f["captured"] == metric(m, "pynq_mqtt_events_captured_total")
    assert f["published"] == metric(m, "pynq_mqtt_events_published_total")
    assert f["led_commands"] == metric(m, "pynq_mqtt_led_commands_total", result="accepted")


def test_every_counter_of_the_stats_message_is_a_metric(binary, mosquitto, tmp_path):
    """The `stats` JSON's counters, key by key, against one scrape taken right after
    (a quiet daemon: nothing moves in between)."""
    import json
    http = free_port()
    sub = Subscriber(mosquitto, ("stats",))
    d = Daemon(binary, f"mqtt://127.0.0.1:{mosquitto}", tmp_path, "--stats-interval", "1",
               "--http", http)
    try:
        wait_http(http)
        got = sub.wait_for(lambda ms: len(ms) >= 1, timeout=20)
        assert got, "no stats message"
        stats = json.loads(got[0][1])
        m = parse_metrics(get(http, "/metrics")[1])
    finally:
        d.stop()
        sub.close()
    names = {
        "captured": ("pynq_mqtt_events_captured_total", {}),
        "published": ("pynq_mqtt_events_published_total", {}),
        "buffered": ("pynq_mqtt_retry_buffer_events", {}),
        "writes": ("pynq_mqtt_socket_writes_total", {}),
        "bytes_written": ("pynq_mqtt_socket_written_bytes_total", {}),
        "irqs": ("pynq_mqtt_irqs_total", {}),
        "bus_errors": ("pynq_mqtt_bus_errors_total", {}),
        "broker.connects": ("pynq_mqtt_broker_connects_total", {}),
        "broker.errors": ("pynq_mqtt_broker_connection_errors_total", {}),
        "broker.resent": ("pynq_mqtt_broker_resent_events_total", {}),
        "broker.qos0_fate_unknown": ("pynq_mqtt_broker_qos0_fate_unknown_total", {}),
        "broker.control_too_large": ("pynq_mqtt_broker_control_too_large_total", {}),
    }
    checked = 0
    for key, value in stats.items():
        groups = {"dropped": "pynq_mqtt_events_dropped_total", "led_commands": "pynq_mqtt_led_commands_total"}
        if key in groups:
            label = "cause" if key == "dropped" else "result"
            for k, v in value.items():
                assert metric(m, groups[key], **{label: k}) == v, (key, k)
                checked += 1
        elif key == "broker":
            for k, v in value.items():
                if k == "reconnects":  # derived: connects - 1
                    assert metric(m, "pynq_mqtt_broker_connects_total") - 1 == v
                    continue
                name, labels = names[f"broker.{k}"]
                assert metric(m, name, **labels) == v, k
                checked += 1
        elif key in ("client_id", "uptime_s", "rates"):
            continue  # not counters
        elif key in ("writes", "bytes_written"):
            # the stats message itself was written after its counters were read
            assert metric(m, names[key][0]) >= value, key
            checked += 1
        else:
            assert key in names, f"stats key {key} has no metric"
            assert metric(m, names[key][0]) == value, key
            checked += 1
    assert checked >= 18


def test_page_control_beyond_loopback_needs_a_token(binary):
    r = subprocess.run([str(binary), "config", "--http", "0.0.0.0:8080", "--http-control"],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()
    assert len(err) == 1 and "PYNQ_MQTT_HTTP_TOKEN" in err[0] and "--http-control" in err[0], r.stderr
    ok = subprocess.run([str(binary), "config", "--http", "0.0.0.0:8080", "--http-control"],
                        capture_output=True, text=True, timeout=30,
                        env={"PATH": "/usr/bin:/bin", "PYNQ_MQTT_HTTP_TOKEN": "s3cret"})
    assert ok.returncode == 0, ok.stderr
    assert "s3cret" not in ok.stdout + ok.stderr
    loop = subprocess.run([str(binary), "config", "--http", "8080", "--http-control"],
                          capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert loop.returncode == 0, loop.stderr
    assert 'http = "127.0.0.1:8080"' in loop.stdout, loop.stdout


def test_presses_and_led_commands_need_their_permission(binary, mosquitto, tmp_path):
    """Without --http-control the page cannot switch an LED; with it, it can, and a
    press needs JSON (what a cross-site form cannot send without a preflight)."""
    http = free_port()
    d = Daemon(binary, f"mqtt://127.0.0.1:{mosquitto}", tmp_path, "--http", http)
    sub = Subscriber(mosquitto, ("button/#", "led/#"))

    def post(path, body, ctype="application/json", host=None):
        headers = {"Content-Type": ctype}
        if host:
            headers["Host"] = host
        req = urllib.request.Request(f"http://127.0.0.1:{http}{path}", data=body.encode(),
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=5) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
    try:
        wait_http(http)
        assert post("/api/led", '{"led":0,"action":"on"}') == 404
        assert post("/api/input", "input=0&level=true", "application/x-www-form-urlencoded") == 415
        assert post("/api/input", '{"input":0,"level":true}') == 204
        time.sleep(0.1)  # a press the simulated clock sees (the page holds at least 80 ms)
        assert post("/api/input", '{"input":0,"level":false}') == 204
        assert post("/api/input", '{"input":99,"level":true}') == 400
        # another site's name pointed at 127.0.0.1 (DNS rebinding) may not act
        assert post("/api/input", '{"input":0,"level":true}', host="evil.example:80") == 403
        got = sub.wait_for(lambda ms: [m[:2] for m in ms if m[0] == "button/0"] ==
                           [("button/0", b"1"), ("button/0", b"0")], timeout=20)
        assert got, sub.snapshot()
    finally:
        d.stop()
    http = free_port()
    d = Daemon(binary, f"mqtt://127.0.0.1:{mosquitto}", tmp_path, "--http", http, "--http-control")
    try:
        wait_http(http)
        assert post("/api/led", '{"led":2,"action":"toggle"}') == 204
        assert sub.wait_for(lambda ms: ("led/2", b"1", False) in ms, timeout=20), sub.snapshot()
        assert post("/api/led", '{"led":2,"action":"blink"}') == 400
    finally:
        d.stop()
        sub.close()
