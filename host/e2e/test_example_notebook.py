"""The seed's notebook, upgraded (examples/buttons_and_leds.py), run as a script against
the daemon on the simulated board and a real mosquitto: LEDs set through led/<i>/set and
read back, button edges from a stimulus (each press toggling its LED, button 3 ending
the loop), and 10,000 QoS 0 publishes of which an independent subscriber must receive
every one."""
import importlib.util
import signal
import subprocess
import sys
import time

from conftest import ROOT

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


def test_the_example_against_the_daemon_on_the_simulated_board(binary, mosquitto, tmp_path):
    # presses 2 s after the daemon is ready (real time), so the example is listening
    stim = tmp_path / "presses.stim"
    stim.write_text("2000000 0 1\n2100000 0 0\n2300000 1 1\n2400000 1 0\n"
                    "2600000 2 1\n2700000 2 0\n3500000 3 1\n3600000 3 0\n")
    out_path = tmp_path / "example.out"
    out = open(out_path, "w")
    example = subprocess.Popen(
        [sys.executable, "-u", str(EXAMPLE), "--broker", "127.0.0.1", "--port", str(mosquitto),
         "--daemon-timeout", "60", "--button-timeout", "60"],
        stdout=out, stderr=subprocess.STDOUT)
    daemon = None
    try:
        # the daemon starts only once the example has subscribed: no edge can precede it
        assert wait_for_text(out_path, "subscribed to button/#", 30), out_path.read_text()
        dlog = open(tmp_path / "daemon.log", "w")
        daemon = subprocess.Popen(
            [str(binary), "run", "--board", "sim", "--broker", f"mqtt://127.0.0.1:{mosquitto}",
             "--stimulus", str(stim), "--sim-speed", "realtime", "--stats-interval", "0"],
            stdout=dlog, stderr=subprocess.STDOUT)
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

    assert "daemon: online, 4 LEDs" in lines, text
    start = lines.index("daemon: online, 4 LEDs") + 1
    assert lines[start:start + 8] == [f"LED {i}: on" for i in range(4)] + [f"LED {i}: off" for i in range(4)], text

    start = lines.index("press buttons 0-2; button 3 ends this cell") + 1
    expected = []
    for i in range(3):
        expected += [f"button {i}: pressed", f"LED {i}: on", f"button {i}: released"]
    expected += ["button 3: pressed", "button 3 pressed: done with buttons"]
    assert lines[start:start + len(expected)] == expected, text

    assert "  delivered 10000 of 10000 to an independent subscriber" in text, text
    assert lines[-4:] == ["LED 0: off", "LED 1: off", "LED 2: off", "done"], text
