"""Fixtures of the end-to-end tests: a real mosquitto on a free loopback port, an
independent paho-mqtt subscriber, and the pynq-mqtt binary on the simulated board.
The broker and subscriber classes themselves live in mqtt_env.py (one of each)."""
import os
import pathlib
import re
import subprocess
import time

import warnings

import paho.mqtt.client as mqtt
import pytest

from mqtt_env import RUNNING_BROKERS, Collector, Mosquitto, free_port, wait_port  # noqa: F401 (re-exported)

ROOT = pathlib.Path(__file__).resolve().parents[2]

# the tests' name for an independent QoS 1 subscriber
Subscriber = Collector


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "arm: also run against the armv7 daemon under qemu-user (scripts/test, step "
        "'board build: armv7 end to end'): the seed workflow and a QoS 1 broker restart")
    config.addinivalue_line(
        "markers",
        "release: also run against the release build, scripts/demo's binary (scripts/test, "
        "step 'daemon: the release build'): settings, doctor and the demo")


@pytest.fixture(autouse=True)
def no_broker_left_behind(request):
    """A broker a test started and did not stop is stopped after it (and named), so that
    it cannot hold a port or a core through the tests after it."""
    yield
    for b in list(RUNNING_BROKERS):
        warnings.warn(f"{request.node.nodeid} left mosquitto on port {b.port} running")
        b.stop()


@pytest.fixture(scope="session")
def binary():
    path = pathlib.Path(os.environ.get("PYNQ_MQTT_BIN", ROOT / "target/debug/pynq-mqtt"))
    assert path.exists(), f"{path} missing: build it first (scripts/test does)"
    return path


@pytest.fixture(scope="session")
def sim_shape(binary):
    """(inputs, LEDs) of the simulated board this binary was built with, read from the
    peripheral's PARAMS register (`regs --board sim`): tests that count inputs or LEDs
    follow the build's shape (host/sim/build.rs) instead of assuming one."""
    r = subprocess.run([str(binary), "regs", "--board", "sim"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    m = re.search(r"^\S+\s+PARAMS\s.*\bN_INPUTS=(\d+) N_LEDS=(\d+)", r.stdout, re.M)
    assert m, r.stdout
    return int(m[1]), int(m[2])


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
