"""A board that changes under the running daemon (`run --board uio`, on the fake UIO
board of test_board_cli.py with FIFOs for its interrupt): the UIO device goes away
(overlay unloaded or reloaded), or the PL now holds another bitstream. Either way the
daemon writes nothing more to the device, publishes `offline` and exits with the status
docs/board.md documents, which the service unit acts on (restart, or stay stopped)."""
import os
import struct
import subprocess
import time

import pytest

from conftest import Subscriber, publish
from test_board_cli import BASE, fake_board

EXIT_DEVICE_GONE = 75
EXIT_OTHER_BITSTREAM = 78
LED_SET = 0x84


class Board:
    """The fake board, its interrupt FIFOs held open by the test, and the daemon."""

    def __init__(self, binary, tmp_path, port):
        self.paths = fake_board(tmp_path)
        self.dev = tmp_path / "dev/uio4"
        wait, rearm = tmp_path / "irq-wait", tmp_path / "irq-rearm"
        os.mkfifo(wait)
        os.mkfifo(rearm)
        # read-write ends: the daemon's opens do not block, and the test plays the
        # device by writing counts into one and closing it
        self.wait_fd = os.open(wait, os.O_RDWR)
        self.rearm_fd = os.open(rearm, os.O_RDWR | os.O_NONBLOCK)
        self.log = tmp_path / "daemon.log"
        self.sub = Subscriber(port, ("#",))
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(
                [str(binary), "run", "--board", "uio", "--broker", f"mqtt://127.0.0.1:{port}",
                 "--stats-interval", "0", "--client-id", "lifecycle", *self.paths,
                 "--irq-wait", str(wait), "--irq-rearm", str(rearm)],
                stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", "PYNQ_MQTT_LOG": "info"})

    def status(self):
        return [p for t, p, _ in self.sub.snapshot() if t == "status"]

    def online(self):
        return self.sub.wait_for(lambda m: any(t == "status" and p == b"online" for t, p, _ in m), 30)

    def reg(self, off):
        return struct.unpack_from("<I", self.dev.read_bytes(), BASE + off)[0]

    def set_reg(self, off, value):
        with open(self.dev, "r+b") as f:
            f.seek(BASE + off)
            f.write(struct.pack("<I", value))

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.sub.close()
        for fd in (self.wait_fd, self.rearm_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture
def board(binary, tmp_path, mosquitto):
    b = Board(binary, tmp_path, mosquitto)
    yield b
    b.close()


def test_a_device_that_goes_away_publishes_offline_and_exits_75(board):
    assert board.online(), board.log.read_text()
    os.write(board.wait_fd, struct.pack("<I", 1))  # one interrupt, served normally
    time.sleep(0.3)
    assert board.proc.poll() is None, board.log.read_text()
    os.close(board.wait_fd)  # the device is unregistered: its descriptor hangs up
    code = board.wait()
    text = board.log.read_text()
    assert code == EXIT_DEVICE_GONE, f"exit {code}\n{text}"
    assert board.sub.wait_for(lambda m: any(t == "status" and p == b"offline" for t, p, _ in m), 10), \
        board.status()
    assert "went away" in text, text
    # a clean DISCONNECT: the broker drops the last will, so `offline` came from the daemon
    assert "disconnected from broker" in text, text


def test_another_bitstream_is_never_written_and_exits_78(board, mosquitto):
    assert board.online(), board.log.read_text()
    # a notebook loaded another design: the same window answers with its registers
    board.set_reg(0x00, 0x1234_5678)
    code = board.wait()
    text = board.log.read_text()
    assert code == EXIT_OTHER_BITSTREAM, f"exit {code}\n{text}"
    assert board.sub.wait_for(lambda m: any(t == "status" and p == b"offline" for t, p, _ in m), 10), \
        board.status()
    assert "0x12345678" in text and "download=False" in text, text
    assert "disconnected from broker" in text, text
    # and an LED command now reaches nobody: nothing was written into the other IP
    publish(mosquitto, "led/1/set", b"1")
    time.sleep(0.3)
    assert board.reg(LED_SET) == 0


def test_an_led_command_after_the_bitstream_changed_is_not_written(board, mosquitto):
    """The identity is checked before every LED write, not only at the event thread's
    wakes: a command that arrives right after the change does not reach the other IP."""
    assert board.online(), board.log.read_text()
    assert board.sub.wait_for(lambda m: any(t == "led/3" for t, _, _ in m), 10)
    board.set_reg(0x00, 0)
    publish(mosquitto, "led/1/set", b"1")
    code = board.wait()
    assert code == EXIT_OTHER_BITSTREAM, f"exit {code}\n{board.log.read_text()}"
    assert board.reg(LED_SET) == 0, "an LED write into another IP"


def test_the_exit_statuses_are_in_the_help(binary):
    r = subprocess.run([str(binary), "run", "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0
    flat = " ".join(r.stdout.split())
    assert "75 the UIO device went away" in flat and "78 the peripheral no longer answers" in flat, r.stdout


def test_another_bitstream_at_start_is_78_too(binary, tmp_path):
    """The unit's loader put our overlay in before the start: an ID that is not ours then
    means someone else's design, and the unit must not restart into it."""
    paths = fake_board(tmp_path, id_value=0x0BAD_0BAD)
    r = subprocess.run([str(binary), "run", "--board", "uio", "--stats-interval", "0", *paths],
                       capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == EXIT_OTHER_BITSTREAM, r.stderr
    assert "0x0bad0bad" in r.stderr, r.stderr
