"""Stopping the daemon (issue 15, point 7): the first SIGINT/SIGTERM says what is being
flushed and for how long at most; a second one quits at once, counting what it drops;
the exit status says when events were lost; a stop during a connection attempt does
not wait for the CONNACK."""
import re
import signal
import socket
import threading
import time

from mqtt_env import EXIT_EVENTS_LOST, Daemon, free_port, stimulus

COMMON = ["--qos", "1", "--payload", "json", "--stats-interval", "0",
          "--reconnect-min", "0.1", "--reconnect-max", "0.5"]


def test_a_second_signal_quits_at_once_and_counts_what_it_drops(binary, tmp_path):
    """The broker is down and 40 events are buffered. The first SIGINT logs the number
    and the shutdown timeout (15 s); the second one ends the process at once (it used
    to be ignored: the daemon waited the whole 15 s), the final line counts the 40 as
    lost, and the exit status is non-zero (it was 0)."""
    port = free_port()  # nothing listens there
    stim = tmp_path / "s.stim"
    stimulus(stim, 40, spacing_us=1000, start_us=100_000)
    d = Daemon(binary, f"mqtt://127.0.0.1:{port}", tmp_path, *COMMON, stimulus=stim)
    try:
        assert d.wait_log("cannot connect to broker", 20), d.text()
        time.sleep(1.0)  # the 40 events (40 ms of simulated time) are captured
        d.proc.send_signal(signal.SIGINT)
        assert d.wait_log("flushing", 10), d.text()[-3000:]
        line = next(l for l in d.text().splitlines() if "flushing" in l)
        m = re.search(r"flushing (\d+) buffered events for at most (\S+)", line)
        assert m, line
        assert int(m.group(1)) == 40 and m.group(2) == "15s", line
        time.sleep(0.5)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGINT)
        code = d.wait(20)
        took = time.monotonic() - t0
        print(f"second SIGINT to exit: {took:.3f} s (shutdown timeout 15 s); exit status {code}")
        text = d.text()
        assert took < 3.0, f"{took:.1f} s after the second signal\n{text[-3000:]}"
        assert code == EXIT_EVENTS_LOST, text[-3000:]
        assert "SIGINT again: quitting now, 40 buffered events dropped" in text, text[-3000:]
        last = [l for l in text.splitlines() if "stopped with" in l]
        assert last, text[-3000:]
        counters = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", last[-1])}
        assert counters["captured"] == 40, last[-1]
        assert counters["lost"] == 40 and counters["dropped_at_shutdown"] == 40, last[-1]
        assert "stopped with 40 events lost" in last[-1], last[-1]
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def test_a_lossy_stop_after_the_shutdown_timeout_exits_non_zero(binary, tmp_path):
    """One signal, broker still down: after the shutdown timeout (1 s here) the buffered
    events are dropped, counted, and the exit status says so (it was 0)."""
    port = free_port()
    stim = tmp_path / "s.stim"
    stimulus(stim, 10, spacing_us=1000, start_us=100_000)
    d = Daemon(binary, f"mqtt://127.0.0.1:{port}", tmp_path, *COMMON, "--shutdown-timeout", "1",
               stimulus=stim)
    try:
        assert d.wait_log("cannot connect to broker", 20), d.text()
        time.sleep(1.0)
        code = d.stop(signal.SIGTERM, timeout=30)
        text = d.text()
        assert "flushing 10 buffered events for at most 1s" in text, text[-3000:]
        assert code == EXIT_EVENTS_LOST, text[-3000:]
        assert re.search(r"stopped with 10 events lost .*lost=10", text), text[-3000:]
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def test_sigterm_during_a_connection_attempt_to_a_silent_peer_ends_at_once(binary, tmp_path):
    """A peer that accepts TCP and never answers CONNECT (the CONNACK timeout is 10 s):
    SIGTERM with nothing buffered ends the daemon within a second or so (it used to
    wait out the CONNACK timeout) and, nothing being lost, with status 0."""
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    port = srv.getsockname()[1]
    accepted = threading.Event()
    held = []

    def accept():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            held.append(c)  # read nothing, answer nothing
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    d = Daemon(binary, f"mqtt://127.0.0.1:{port}", tmp_path, *COMMON)
    try:
        assert accepted.wait(20), d.text()
        time.sleep(0.5)  # well inside the 10 s CONNACK timeout
        t0 = time.monotonic()
        code = d.stop(signal.SIGTERM, timeout=30)
        took = time.monotonic() - t0
        print(f"SIGTERM during a CONNACK wait to exit: {took:.3f} s (CONNACK timeout 10 s)")
        assert took < 3.0, f"{took:.1f} s\n{d.text()[-3000:]}"
        assert code == 0, d.text()[-3000:]
        assert "stopped cleanly" in d.text(), d.text()[-3000:]
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        srv.close()
        for c in held:
            c.close()
