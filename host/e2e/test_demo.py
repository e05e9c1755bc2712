"""scripts/demo (issue 16 point 5): it talks only to the broker it starts. A port in use
(here a real mosquitto standing for the one a board's LEDs listen to) stops it with one
line and a failing status before anything is published; `--port N` works; it needs no
Python venv. PYNQ_MQTT_BIN points it at the tests' binary, so no release build runs here;
scripts/test's release step runs the demo test again with the release binary, the one
scripts/demo builds."""
import os
import subprocess
import time

import pytest

from conftest import ROOT, Subscriber
from mqtt_env import Mosquitto, free_port

DEMO = ROOT / "scripts" / "demo"


def run_demo(binary, *args, env=None, timeout=120):
    return subprocess.run([str(DEMO), *args], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, PYNQ_MQTT_BIN=str(binary), **(env or {})))


def test_a_port_in_use_is_one_line_and_nothing_reaches_that_broker(binary, tmp_path):
    broker = Mosquitto(tmp_path, config="stock").start()
    sub = Subscriber(broker.port, ("#",))
    try:
        time.sleep(0.3)
        connects_before = broker.logs().count("New client connected")
        for args, env in [(["--port", str(broker.port)], None), ([f"--port={broker.port}"], None),
                          ([], {"PYNQ_MQTT_SIM_PORT": str(broker.port)})]:
            r = run_demo(binary, *args, env=env)
            assert r.returncode != 0, (args, r.stdout, r.stderr)
            lines = r.stderr.strip().splitlines()
            assert len(lines) == 1 and f"port {broker.port}" in lines[0] and "in use" in lines[0], r.stderr
            assert r.stdout == "", r.stdout
        time.sleep(1.0)
        assert sub.snapshot() == [], f"the demo published to a broker it did not start: {sub.snapshot()}"
        # not even a connection: the only client that ever connected is the test's own
        assert broker.logs().count("New client connected") == connects_before, broker.logs()
    finally:
        sub.close()
        broker.stop()


@pytest.mark.release
def test_demo_port_runs_the_board_shaped_simulator_and_its_led_commands(binary):
    port = free_port()
    r = run_demo(binary, "--port", str(port))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout
    assert f"broker mqtt://127.0.0.1:{port}" in out and "6 inputs (BTN0-3, SW0-1), 10 LEDs" in out, out
    view = [line.split()[2:] for line in out.splitlines() if line.strip()[:1].isdigit()]
    leds = [v for v in view if v[:1] and v[0].startswith("led/") and not v[0].endswith("/set")]
    # the ten LEDs' retained states, then the commands read back from the hardware
    assert [v[:2] for v in leds[:10]] == [[f"led/{i}", "0"] for i in range(10)], out
    assert [v[:2] for v in leds[10:]] == [["led/2", "1"], ["led/2", "0"], ["led/6", "1"]], out
    # scripts/demo.stim in order, as far as the simulated clock got in the demo's 4 s
    # of wall time (a loaded machine runs the model slower than real time)
    stim = [f"button/{line.split()[1]} {line.split()[2]}".split()
            for line in (ROOT / "scripts" / "demo.stim").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    presses = [v[:2] for v in view if v[:1] and v[0].startswith("button/")]
    assert len(presses) >= 2 and presses == stim[:len(presses)] or sorted(presses) == sorted(stim), out
    assert view[-1] == ["status", "offline"], out


def test_a_bad_port_is_refused_before_anything_starts(binary):
    for bad in ["0", "65536", "http", ""]:
        r = run_demo(binary, "--port", bad)
        assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)
        assert r.stdout == "", r.stdout


def test_the_demo_installs_no_python_venv():
    setup = (ROOT / "scripts" / "setup").read_text()
    demo = DEMO.read_text()
    assert "scripts/setup --demo" in demo and "scripts/setup\n" not in demo
    # the demo branch of setup leaves before the venv
    demo_branch = setup.index("((demo)) && exit 0")
    assert demo_branch < setup.index("python3 -m venv"), "setup --demo would build the venv"
