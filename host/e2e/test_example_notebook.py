"""The seed's notebook, upgraded (examples/buttons_and_leds.py), run as a script against
the daemon on the simulated board and a real mosquitto: LEDs set through led/<i>/set and
read back, button edges from a stimulus (each press toggling its LED, button 3 ending
the loop), and 10,000 QoS 0 publishes of which an independent subscriber must receive
every one."""
import importlib.util
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from mqtt_env import free_port

EXAMPLE = ROOT / "examples" / "buttons_and_leds.py"
NOTEBOOK = ROOT / "examples" / "buttons_and_leds.ipynb"


def test_the_committed_notebook_matches_the_script():
    spec = importlib.util.spec_from_file_location("to_ipynb", ROOT / "examples" / "to_ipynb.py")
    to_ipynb = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(to_ipynb)
    assert NOTEBOOK.read_text() == to_ipynb.render(EXAMPLE), \
        "examples/buttons_and_leds.ipynb is stale: python3 examples/to_ipynb.py examples/buttons_and_leds.py"


def wait_for_text(path, text, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return True
        time.sleep(0.05)
    return False


# the daemon's topic settings, given to both the daemon (its environment) and the example
# (its flags of the same names): the seed's topics, and custom names, prefix and template
CUSTOM = {"prefix": "lab/b1/", "button-topic": "{name}/edge-{i}",
          "input-names": "btn0,btn1,btn2,btn3,sw0,sw1",
          "led-names": "ld0,ld1,ld2,ld3,ld4b,ld4g,ld4r,ld5b,ld5g,ld5r"}


@pytest.mark.parametrize("topics", [{}, CUSTOM], ids=["seed-topics", "custom-names-and-topics"])
def test_the_example_against_the_daemon_on_the_simulated_board(binary, mosquitto, sim_shape, tmp_path, topics):
    n_leds = sim_shape[1]
    flags = [a for k, v in topics.items() for a in (f"--{k}", v)]
    env = dict(os.environ, **{f"PYNQ_MQTT_{k.upper().replace('-', '_')}": v for k, v in topics.items()})
    inputs = topics.get("input-names", "0,1,2,3").split(",")
    led_names = topics.get("led-names", ",".join(str(i) for i in range(n_leds))).split(",")
    # presses 2 s after the daemon is ready (real time), so the example is listening
    stim = tmp_path / "presses.stim"
    stim.write_text("2000000 0 1\n2100000 0 0\n2300000 1 1\n2400000 1 0\n"
                    "2600000 2 1\n2700000 2 0\n3500000 3 1\n3600000 3 0\n")
    out_path = tmp_path / "example.out"
    out = open(out_path, "w")
    example = subprocess.Popen(
        [sys.executable, "-u", str(EXAMPLE), "--broker", "127.0.0.1", "--port", str(mosquitto),
         "--daemon-timeout", "60", "--button-timeout", "60", *flags],
        stdout=out, stderr=subprocess.STDOUT)
    daemon = None
    try:
        # the daemon starts only once the example has subscribed: no edge can precede it
        assert wait_for_text(out_path, "subscribed to ", 30), out_path.read_text()
        dlog = open(tmp_path / "daemon.log", "w")
        daemon = subprocess.Popen(
            [str(binary), "run", "--board", "sim", "--broker", f"mqtt://127.0.0.1:{mosquitto}",
             "--stimulus", str(stim), "--sim-speed", "realtime", "--stats-interval", "0"],
            stdout=dlog, stderr=subprocess.STDOUT, env=env)
        code = example.wait(timeout=120)
    finally:
        if example.poll() is None:
            example.kill()
        out.close()
        if daemon is not None:
            daemon.send_signal(signal.SIGTERM)
            dcode = daemon.wait(timeout=30)
            dlog.close()
    text = out_path.read_text()
    assert code == 0, text
    assert dcode == 0, (tmp_path / "daemon.log").read_text()
    lines = text.splitlines()

    assert f"daemon: online, {n_leds} LEDs" in lines, text
    start = lines.index(f"daemon: online, {n_leds} LEDs") + 1
    assert lines[start:start + 8] == [f"LED {led_names[i]}: on" for i in range(4)] + \
        [f"LED {led_names[i]}: off" for i in range(4)], text

    start = lines.index("press buttons 0-2; button 3 ends this cell") + 1
    expected = []
    for i in range(3):
        expected += [f"button {inputs[i]}: pressed", f"LED {led_names[i]}: on", f"button {inputs[i]}: released"]
    expected += [f"button {inputs[3]}: pressed", f"button {inputs[3]} pressed: done with buttons"]
    assert lines[start:start + len(expected)] == expected, text

    assert "  delivered 10000 of 10000 to an independent subscriber" in text, text
    assert lines[-4:] == [f"LED {led_names[i]}: off" for i in range(3)] + ["done"], text


def test_a_wrong_host_or_port_is_one_line():
    for broker, port in [("127.0.0.1", str(free_port())), ("no-such-host.invalid", "1883")]:
        r = subprocess.run([sys.executable, str(EXAMPLE), "--broker", broker, "--port", port],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0, r.stdout
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and f"{broker}:{port}" in lines[0] and "--broker" in lines[0], r.stderr
