"""Fixtures of the end-to-end tests: a real mosquitto on a free loopback port, an
independent paho-mqtt subscriber, and the pynq-mqtt binary on the simulated board.
The broker and subscriber classes themselves live in mqtt_env.py (one of each)."""
import os
import pathlib
import time

import paho.mqtt.client as mqtt
import pytest

from mqtt_env import Collector, Mosquitto, free_port, wait_port  # noqa: F401 (re-exported)

ROOT = pathlib.Path(__file__).resolve().parents[2]

# the tests' name for an independent QoS 1 subscriber
Subscriber = Collector


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "arm: also run against the armv7 daemon under qemu-user (scripts/test, step "
        "'board build: armv7 end to end'): the seed workflow and a QoS 1 broker restart")


@pytest.fixture(scope="session")
def binary():
    path = pathlib.Path(os.environ.get("PYNQ_MQTT_BIN", ROOT / "target/debug/pynq-mqtt"))
    assert path.exists(), f"{path} missing: build it first (scripts/test does)"
    return path


@pytest.fixture
def mosquitto(tmp_path):
    """A fresh mosquitto on a free loopback port; yields the port."""
    broker = Mosquitto(tmp_path).start()
    try:
        yield broker.port
    finally:
        broker.stop()


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
