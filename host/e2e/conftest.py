"""Fixtures of the end-to-end tests: a real mosquitto on a free loopback port, an
independent paho-mqtt subscriber, and the pynq-mqtt binary on the simulated board."""
import os
import pathlib
import shutil
import socket
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


@pytest.fixture(scope="session")
def binary():
    path = pathlib.Path(os.environ.get("PYNQ_MQTT_BIN", ROOT / "target/debug/pynq-mqtt"))
    assert path.exists(), f"{path} missing: build it first (scripts/test does)"
    return path


@pytest.fixture
def mosquitto(tmp_path):
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    # never drop QoS0 messages queued for a slow test subscriber
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        "max_queued_messages 0\nmax_inflight_messages 0\npersistence false\n"
    )
    log = open(tmp_path / "mosquitto.log", "w")
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


class Subscriber:
    """Collects every message on the given filters, in arrival order."""

    def __init__(self, port, filters=("#",), client_id=None):
        self.messages = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"e2e-sub-{os.getpid()}-{port}-{time.monotonic_ns()}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *a, **k: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.client.subscribe([(f, 1) for f in filters])
        assert subscribed.wait(10), "no SUBACK"

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append((msg.topic, msg.payload, msg.retain))
            self.cond.notify_all()

    def wait_for(self, pred, timeout=30.0):
        """Waits until pred(messages) is true; returns the messages."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred(self.messages):
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
            return list(self.messages)

    def snapshot(self):
        with self.cond:
            return list(self.messages)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def subscriber_factory():
    made = []

    def make(port, filters=("#",)):
        s = Subscriber(port, filters)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


def publish(port, topic, payload, qos=1):
    """Publishes one message from a separate, independent client."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"e2e-pub-{time.monotonic_ns()}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    info = c.publish(topic, payload, qos=qos)
    info.wait_for_publish(10)
    c.loop_stop()
    c.disconnect()
