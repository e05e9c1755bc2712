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

from mqtt_env import Collector, Daemon, Mosquitto, Proxy

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
        # the echoed packet is named by its type and size, nothing of its content
        assert "expected CONNACK, got a CONNECT of" in log, log[-2000:]
    leaks = [l for l in log.splitlines() if SECRET in l]
    assert not leaks, f"{len(leaks)} log lines carry the password, e.g. {leaks[0][:300]}"


def led_readbacks(messages):
    """The daemon's LED states (`led/<i>`), not the commands on `led/set`."""
    return [(t, p) for t, p, _ in messages if re.fullmatch(r"led/\d+", t)]


def test_retained_commands_are_never_acted_on_across_link_drops(binary, tmp_path):
    """Someone once left a retained `toggle` on led/0/set and an `on` on led/set. The
    broker hands them out at every subscription, so at every reconnect: acted on,
    the LED would flip at each link drop with nobody sending anything."""
    broker = Mosquitto(tmp_path).start()
    proxy = Proxy(broker.port)
    for topic, word in (("led/0/set", "toggle"), ("led/set", "on")):
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-r", "-t", topic, "-m", word],
                       check=True, timeout=10)
    sub = Collector(broker.port, ("led/+",), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{proxy.port}", tmp_path, "--stats-interval", "0",
               "--reconnect-min", "0.05", "--reconnect-max", "0.2")
    try:
        assert d.wait_log("connected to broker", 20), d.text()[-2000:]
        for k in range(3):
            time.sleep(0.5)
            proxy.cut()
            deadline = time.monotonic() + 20
            while d.text().count("connected to broker") < k + 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert d.text().count("connected to broker") >= k + 2, d.text()[-2000:]
        time.sleep(1)
    finally:
        code = d.stop()
        sub.close()
        proxy.close()
        broker.stop()
    log = d.text()
    assert code == 0, log[-2000:]
    f = d.final()
    moved = [(t, p) for t, p in led_readbacks(sub.snapshot()) if p == b"1"]
    assert f["led_commands"] == 0 and not moved, f"LEDs moved with nobody sending: {f}, {moved}"
    # the first one is told, once, with how to clear it
    advice = [l for l in log.splitlines() if "mosquitto_pub -r -n -t" in l]
    assert len(advice) == 1, log[-3000:]
    assert "led/0/set" in advice[0] or "led/set" in advice[0], advice[0]


def test_a_flood_of_bad_commands_huge_topics_and_dropped_commands_keeps_the_log_small(binary, tmp_path):
    """400,000 six-byte garbage commands, a 60 KB topic, and 20,000 `on` to every LED
    (faster than the driver takes them, so commands are dropped on its full channel):
    each is counted, the log keeps the first few lines per cause and a count every
    10 s, under 1 MB, no line longer than a few hundred bytes."""
    n_bad = 400_000
    broker = Mosquitto(tmp_path).start()
    sub = Collector(broker.port, ("stats",), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "1")
    lines = tmp_path / "garbage.txt"
    lines.write_text("".join(f"g{k % 100_000:05d}\n" for k in range(n_bad)))
    try:
        assert d.wait_log("connected to broker", 20), d.text()[-2000:]
        sub.wait_for(lambda m: len(m) >= 1, 10)
        # first, so that its line is among those shown
        subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-q", "1", "-t", "led/" + "x" * 60_000 + "/set",
                        "-m", "on"], check=True, timeout=30)
        assert d.wait_log("no LED named", 10), d.text()[-2000:]
        t0 = time.monotonic()
        # QoS 0, as `mosquitto_pub -l` sends by default (the broker delivers it at QoS 0)
        with open(lines) as f:
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "led/0/set", "-l"],
                           stdin=f, check=True, timeout=600)
        ons = tmp_path / "on.txt"
        ons.write_text("on\n" * 20_000)
        with open(ons) as f:
            subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "led/set", "-l"],
                           stdin=f, check=True, timeout=600)
        print(f"flood published in {time.monotonic() - t0:.1f} s")

        def stats(m):
            s = [json.loads(p) for t, p, _ in m if t == "stats"]
            return s[-1]["led_commands"] if s else {}
        # taken in: the counters stop moving (three stats messages alike)
        def settled(m):
            s = [json.loads(p)["led_commands"] for t, p, _ in m if t == "stats"]
            return len(s) >= 3 and s[-1] == s[-2] == s[-3] and s[-1]["rejected"] > 0
        assert sub.wait_for(settled, 600), stats(sub.snapshot())
        print(f"flood taken in {time.monotonic() - t0:.1f} s: {stats(sub.snapshot())}")
        dropped = stats(sub.snapshot())["dropped"]
    finally:
        code = d.stop()
        sub.close()
        broker.stop()
    log = d.text()
    size = len(log.encode())
    longest = max(log.splitlines(), key=len)
    print(f"log: {size} bytes, {len(log.splitlines())} lines, longest {len(longest)} bytes")
    assert code == 0, log[-2000:]
    assert size < 1_000_000, f"log of {size} bytes"
    assert len(longest) < 1000, f"a line of {len(longest)} bytes: {longest[:300]}"
    big = [l for l in log.splitlines() if "no LED named" in l]
    assert big and len(big[0]) < 1000, big
    assert not [c for c in log if ord(c) < 32 and c != "\n"], "a control character in the log"
    # what was not shown is counted, and every count is told by the end
    told = sum(int(n) for n in re.findall(r"LED command rejected: (\d+) more like this", log))
    shown = log.count("WARN pynq_mqtt_bridge::session::incoming: LED command rejected")
    f = d.final()
    print(f"counters: {f}")
    assert f["rejected"] > 0.95 * n_bad, f"the flood did not arrive: {f}"
    assert shown + told == f["rejected"], (shown, told, f)
    assert dropped > 0, "no command was dropped: the flood was too slow to fill the driver's channel"
    if dropped:
        told = sum(int(n) for n in re.findall(r"LED command dropped: (\d+) more like this", log))
        shown = len(re.findall(r"LED command dropped: the driver", log))
        assert shown + told == dropped, (shown, told, dropped)
