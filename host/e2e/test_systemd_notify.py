"""The daemon under systemd's `Type=notify` (the unit scripts/board-install writes):
READY=1 only once the broker has accepted the connection, then WATCHDOG=1 at half the
period systemd asks for. The test plays systemd: a Unix datagram socket as
$NOTIFY_SOCKET, and WATCHDOG_USEC; the board is the simulated one, the broker a real
mosquitto that starts only after the daemon."""
import signal
import socket
import time

from mqtt_env import Daemon, Mosquitto, free_port

WATCHDOG_USEC = 300_000


def receive(sock, until):
    """Datagrams until the monotonic time `until`: (arrival, message) pairs."""
    out = []
    while time.monotonic() < until:
        sock.settimeout(max(0.01, until - time.monotonic()))
        try:
            data = sock.recv(4096)
        except socket.timeout:
            break
        out.append((time.monotonic(), data.decode()))
    return out


def test_ready_only_after_the_broker_accepted_then_watchdog_pings(binary, tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    port = free_port()
    daemon = Daemon(binary, f"mqtt://127.0.0.1:{port}", tmp_path, "--stats-interval", "0",
                    "--client-id", "notify-test",
                    env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    broker = None
    try:
        # no broker yet: the daemon keeps trying, and is not ready
        before = receive(sock, time.monotonic() + 2.5)
        assert not any("READY=1" in m for _, m in before), before
        assert daemon.proc.poll() is None, daemon.text()

        broker = Mosquitto(tmp_path, port=port)
        started = time.monotonic()
        broker.start()
        after = receive(sock, time.monotonic() + 15)
        ready = [t for t, m in after if "READY=1" in m.split("\n")]
        assert ready, (after, daemon.text())
        assert ready[0] >= started
        # the broker had accepted it when READY came: its log names the client
        assert "notify-test" in broker.logs(), broker.logs()

        pings = [t for t, m in receive(sock, time.monotonic() + 1.5) if m == "WATCHDOG=1"]
        # every 150 ms: about 10 in 1.5 s; at least 5 leaves room for a busy machine
        assert len(pings) >= 5, pings
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        assert max(gaps) < WATCHDOG_USEC / 1e6, gaps

        assert daemon.stop(signal.SIGTERM) == 0, daemon.text()
        # the datagrams sent before the exit wait in the socket
        assert "STOPPING=1" in [m for _, m in receive(sock, time.monotonic() + 0.5)]
    finally:
        if daemon.proc.poll() is None:
            daemon.stop(signal.SIGKILL)
        if broker:
            broker.stop()
        sock.close()


def test_without_notify_socket_nothing_is_sent_and_the_daemon_runs(binary, tmp_path, mosquitto):
    daemon = Daemon(binary, f"mqtt://127.0.0.1:{mosquitto}", tmp_path, "--stats-interval", "0",
                    env={"WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        assert daemon.wait_log("connected to broker"), daemon.text()
    finally:
        assert daemon.stop(signal.SIGTERM) == 0, daemon.text()


def test_a_listener_that_stops_reading_never_stalls_the_daemon(binary, tmp_path, mosquitto):
    """A notify socket whose queue is full (a listener that stopped reading: Linux
    queues net.unix.max_dgram_qlen datagrams, 10 by default) drops the daemon's messages; it neither stalls the pings'
    runtime worker nor the stop. Before, a blocking send hung the SIGTERM for good."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    # a ping every 10 ms: the queue is full 100 ms after the start
    daemon = Daemon(binary, f"mqtt://127.0.0.1:{mosquitto}", tmp_path, "--stats-interval", "0",
                    env={"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "20000"})
    try:
        assert daemon.wait_log("connected to broker"), daemon.text()
        time.sleep(1)
        assert daemon.proc.poll() is None, daemon.text()
        started = time.monotonic()
        assert daemon.stop(signal.SIGTERM, timeout=20) == 0, daemon.text()
        assert "stopped cleanly" in daemon.text(), daemon.text()
        assert time.monotonic() - started < 20
        queued = [m for _, m in receive(sock, time.monotonic() + 0.5)]
        assert queued and queued[0].startswith("READY=1"), queued
        assert set(queued[1:]) <= {"WATCHDOG=1", "STOPPING=1"}, queued
    finally:
        if daemon.proc.poll() is None:
            daemon.stop(signal.SIGKILL)
        sock.close()
