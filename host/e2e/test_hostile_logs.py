"""What a hostile peer can make the daemon write: its own password (a peer that
echoes our CONNECT back), actions nobody asked for (retained LED commands replayed at
every reconnect), and floods of log lines (bad commands by the hundred thousand,
huge topics, commands dropped on a full channel). The echo peer is a few lines of
Python because no real broker misbehaves that way; everything else runs against a
real mosquitto."""
import json
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

from mqtt_env import Collector, Daemon, Mosquitto, Pub

SECRET = "S3cr3t-pa55-echo-Zq"


class EchoPeer:
    """A TCP peer that sends back what it receives. With `connack`, it first answers
    the CONNECT with a CONNACK, then echoes everything, the CONNECT included, so that
    the daemon reads its own CONNECT after a successful connect."""

    def __init__(self, connack=False):
        self.connack = connack
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.received = bytearray()
        self.connections = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        first = True
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                with self.lock:
                    self.received += d
                if first and self.connack:
                    c.sendall(b"\x20\x02\x00\x00")
                first = False
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.sock.close()


@pytest.mark.parametrize("connack", [False, True], ids=["echo", "connack-then-echo"])
def test_an_echoing_peer_never_gets_the_password_into_the_log(binary, tmp_path, connack):
    peer = EchoPeer(connack=connack)
    pw = tmp_path / "board.password"
    pw.write_text(SECRET + "\n")
    pw.chmod(0o600)
    d = Daemon(binary, f"mqtt://127.0.0.1:{peer.port}", tmp_path, "--username", "board1",
               "--password-file", pw, "--reconnect-min", "0.05", "--reconnect-max", "0.2",
               "--keep-alive", "1", env={"PYNQ_MQTT_LOG": "trace"})
    try:
        # a failed connect is retried: several CONNECTs go back; after a CONNACK the
        # one connection lives on (the peer echoes our pings)
        want = 1 if connack else 3
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and peer.connections < want:
            time.sleep(0.1)
        time.sleep(2)
        assert peer.connections >= want, d.text()[-2000:]
        # the attack fired: our CONNECT, password and all, went to the peer and back
        assert SECRET.encode() in bytes(peer.received)
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGTERM, timeout=60)
        peer.close()
    log = d.text()
    assert "TRACE" in log or "DEBUG" in log, "the run was not logged at trace level"
    if connack:
        assert "connected to broker" in log, log[-2000:]
    else:
        assert "cannot connect to broker" in log, log[-2000:]
    leaks = [l for l in log.splitlines() if SECRET in l]
    assert not leaks, f"{len(leaks)} log lines carry the password, e.g. {leaks[0][:300]}"
