"""The interactive simulator in a terminal (issue 16 point 2): `pynq-mqtt sim` in a tmux
pane, keys typed with `send-keys`, the screen read with `capture-pane`, and what the
board did read by an independent subscriber on the simulator's embedded broker."""
import re
import shutil
import subprocess
import time

import pytest

from conftest import Subscriber, free_port, publish, wait_port

# scripts/setup installs tmux: without it these tests fail rather than skip
assert shutil.which("tmux"), "tmux is not installed (scripts/setup installs it)"


class Pane:
    """`pynq-mqtt sim` in a detached tmux session on a server of its own."""

    def __init__(self, binary, port, env=()):
        self.sock = f"pmq-tui-{port}"
        cmd = ["env", *env, str(binary), "sim", "--port", str(port)]
        self.tmux("new-session", "-d", "-s", "sim", "-x", "120", "-y", "40", " ".join(cmd))

    def tmux(self, *args):
        return subprocess.run(["tmux", "-L", self.sock, *args], capture_output=True, text=True, timeout=20)

    def keys(self, *keys):
        # -l: the characters as typed, none read as a key name
        r = self.tmux("send-keys", "-t", "sim", "-l", *keys)
        assert r.returncode == 0, r.stderr

    def screen(self):
        return self.tmux("capture-pane", "-p", "-t", "sim").stdout

    def wait_screen(self, pattern, timeout=15.0):
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"{pattern!r} never on screen:\n{text}")
            time.sleep(0.1)

    def alive(self):
        return self.tmux("has-session", "-t", "sim").returncode == 0

    def close(self):
        self.tmux("kill-server")


@pytest.fixture
def sim(binary, sim_shape):
    if sim_shape != (6, 10):
        pytest.skip(f"the panel's names are the board's; this build is {sim_shape}")
    made = []

    def start(env=()):
        port = free_port()
        pane = Pane(binary, port, env)
        made.append(pane)
        wait_port(port)
        sub = Subscriber(port, ("#",))
        made.append(sub)
        # the daemon online with its input states out, which it publishes after asking
        # for led/+/set, and the screen's own subscriber showing them
        assert sub.wait_for(lambda m: any(t == "input/5" for t, _, _ in m), timeout=15), sub.snapshot()
        pane.wait_screen(r"BTN0 up")
        pane.wait_screen(r"input/5 ")
        return pane, sub, port

    yield start
    for m in made:
        m.close()


def button(messages, i):
    return [p.decode() for t, p, _ in messages if t == f"button/{i}"]


def test_fast_repeated_digits_are_separate_presses_even_with_a_long_debounce(sim):
    # 60 ms of hardware debounce: a click shorter than that would vanish, and four
    # keys typed in one burst would merge if their edges were not spaced and queued
    pane, sub, _ = sim(env=["PYNQ_MQTT_DEBOUNCE_US=60000"])
    pane.keys("0000")
    got = sub.wait_for(lambda m: len(button(m, 0)) >= 8, timeout=20)
    assert got, f"not 4 presses and 4 releases: {button(sub.snapshot(), 0)}"
    time.sleep(1.0)
    assert button(sub.snapshot(), 0) == ["1", "0"] * 4
    screen = pane.wait_screen(r"click BTN0 \(#4\)")
    assert "BTN0 up" in screen, screen


def test_shift_digit_holds_a_button_until_the_next_key(sim):
    pane, sub, _ = sim()
    pane.keys("@")  # Shift+2 on a US layout
    assert sub.wait_for(lambda m: button(m, 2) == ["1"], timeout=10), sub.snapshot()
    pane.wait_screen(r"■ BTN2 down")
    pane.wait_screen(r"hold BTN2")
    time.sleep(1.5)  # held: no release however long
    assert button(sub.snapshot(), 2) == ["1"]
    assert "BTN2 down" in pane.screen()
    pane.keys("@")  # the next key releases it
    assert sub.wait_for(lambda m: button(m, 2) == ["1", "0"], timeout=10), sub.snapshot()
    pane.wait_screen(r"□ BTN2 up")
    pane.wait_screen(r"release BTN2")


def test_a_letter_flips_a_switch(sim):
    pane, sub, _ = sim()
    pane.keys("b")
    assert sub.wait_for(lambda m: button(m, 5) == ["1"], timeout=10), sub.snapshot()
    pane.wait_screen(r"▲ SW1 on")
    time.sleep(0.5)
    assert button(sub.snapshot(), 5) == ["1"], "a switch stays where it was flipped"
    pane.keys("b")
    assert sub.wait_for(lambda m: button(m, 5) == ["1", "0"], timeout=10), sub.snapshot()
    pane.wait_screen(r"▽ SW1 off")


def test_an_unknown_key_is_said_and_does_nothing(sim):
    pane, sub, _ = sim()
    pane.keys("x")
    pane.wait_screen(r"unknown key x")
    pane.keys("?")
    pane.wait_screen(r"Shift\+2 \(@\) hold BTN2")
    time.sleep(0.5)
    assert [t for t, _, _ in sub.snapshot() if t.startswith("button/")] == []


def test_the_led_panel_draws_ld4_and_ld5_in_their_colours(sim):
    pane, sub, port = sim()
    screen = pane.screen()
    assert "○ LD4 off" in screen and "○ LD5 off" in screen, screen
    publish(port, "led/6/set", "on")
    pane.wait_screen(r"● LD4 red")
    publish(port, "led/7/set", "on")
    publish(port, "led/9/set", "on")
    pane.wait_screen(r"● LD5 magenta")
    publish(port, "led/1/set", "on")
    screen = pane.wait_screen(r"● LD1 on")
    assert "○ LD0 off" in screen and "● LD4 red" in screen, screen


def test_logs_and_stats_have_their_own_pane_and_q_quits(sim):
    pane, sub, _ = sim(env=["PYNQ_MQTT_STATS_INTERVAL=1"])
    assert sub.wait_for(lambda m: any(t == "stats" for t, _, _ in m), timeout=10), sub.snapshot()
    pane.wait_screen(r"stats: \{")
    screen = pane.wait_screen(r"connected to broker")
    lines = screen.splitlines()
    log_at = next(i for i, line in enumerate(lines) if "┌ log " in line)
    above, pane_lines = lines[:log_at], lines[log_at:]
    assert not any("INFO" in line or re.search(r"\bstats\b", line) for line in above), screen
    assert any("INFO" in line for line in pane_lines), screen
    assert any(line.startswith("│stats: {") for line in pane_lines), screen
    pane.keys("q")
    assert sub.wait_for(lambda m: any(t == "status" and p == b"offline" for t, p, _ in m), timeout=10), sub.snapshot()
    deadline = time.monotonic() + 10
    while pane.alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not pane.alive(), pane.screen()
