"""Helpers of the MQTT bridge tests: real brokers that a test can kill and restart
(mosquitto from Debian, the embedded rumqttd as `pynq-mqtt broker`), a TCP proxy
that can cut or hold connections, test certificates made with the openssl CLI, a
persistent-session subscriber that reconnects by itself, and the daemon."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import paho.mqtt.client as mqtt


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"

# The speed of the simulated board under the daemons that `Daemon` starts: real time
# unless the run says otherwise. The armv7 run under qemu-user (scripts/test) slows it:
# there the Verilated model runs on the same emulated cores as the daemon's drain,
# which a board's fabric never does, and at real time it took the cycles the drain
# needs (2,500 events/s: 502 to 1,973 of 20,000 lost to the FIFO in 3 runs of 3).
SIM_SPEED = os.environ.get("PYNQ_MQTT_E2E_SIM_SPEED", "realtime")


def sim_wall(sim_seconds):
    """Wall seconds that `sim_seconds` of simulated time take at SIM_SPEED."""
    return sim_seconds / (1.0 if SIM_SPEED == "realtime" else float(SIM_SPEED))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def wait_closed(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                time.sleep(0.05)
        except OSError:
            return
    raise TimeoutError(f"127.0.0.1:{port} still accepts connections")


# The broker configurations the QoS 1/2 tests run against:
# - "stock": Debian's defaults, as users install it (max_inflight_messages 20, which
#   mosquitto 2.0 also applies to QoS 2 messages a client has sent and not yet
#   released, and max_queued_messages 1000);
# - "tuned": no limits, so that a slow test subscriber never loses a QoS 0 message.
# - "unqueued": only max_queued_messages 0, the advice host/README.md once gave, under
#   which a client's QoS 2 messages past the 20th wait unacknowledged in the broker.
BROKER_CONFIGS = ("stock", "tuned", "unqueued")
# the daemon's --protocol values: the QoS and restart tests run in both
PROTOCOLS = ("3.1.1", "5")
CONFIG_LINES = {
    "stock": "",
    "tuned": "max_queued_messages 0\nmax_inflight_messages 0\n",
    "unqueued": "max_queued_messages 0\n",
}


# every Mosquitto started and not yet stopped: conftest stops what a test left behind
RUNNING_BROKERS = set()


class Mosquitto:
    """mosquitto on a fixed loopback port, restartable. `persistence` keeps sessions
    and queued messages across a SIGTERM restart; `extra` is appended to the listener;
    `config` is one of BROKER_CONFIGS."""

    name = "mosquitto"

    def __init__(self, tmp_path, persistence=False, extra="", port=None, listener_opts="allow_anonymous true\n",
                 config="tuned"):
        assert config in BROKER_CONFIGS, config
        self.config = config
        self.dir = tmp_path / f"mosquitto-{time.monotonic_ns()}"
        self.dir.mkdir()
        self.port = port or free_port()
        conf = f"listener {self.port} 127.0.0.1\n{listener_opts}{extra}"
        conf += CONFIG_LINES[config]
        if os.geteuid() == 0:
            # started as root, mosquitto would drop to its own user, which cannot
            # write its database (or read the test's certificates) in the test's tree
            conf += "user root\n"
        if persistence:
            conf += f"persistence true\npersistence_location {self.dir}/\nautosave_interval 3600\n"
        else:
            conf += "persistence false\n"
        self.conf = self.dir / "mosquitto.conf"
        self.conf.write_text(conf)
        self.proc = None
        self.starts = 0

    def start(self):
        self.log = open(self.dir / f"mosquitto-{self.starts}.log", "w")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=self.log, stderr=subprocess.STDOUT)
        RUNNING_BROKERS.add(self)
        self.starts += 1
        wait_port(self.port)
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        if self.proc:
            self.log.close()
        self.proc = None
        RUNNING_BROKERS.discard(self)

    def restart(self, sig=signal.SIGTERM, down_s=0.0):
        self.stop(sig)
        time.sleep(down_s)
        self.start()

    def logs(self):
        return "".join(p.read_text() for p in sorted(self.dir.glob("mosquitto-*.log")))


class Rumqttd:
    """The embedded broker of `pynq-mqtt sim`, alone in its own process."""

    name = "rumqttd"

    def __init__(self, binary, tmp_path, port=None, extra_args=()):
        self.binary = binary
        self.dir = tmp_path / f"rumqttd-{time.monotonic_ns()}"
        self.dir.mkdir()
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.starts = 0

    def start(self):
        self.log = open(self.dir / f"rumqttd-{self.starts}.log", "w")
        self.proc = subprocess.Popen([str(self.binary), "broker", "--port", str(self.port), *self.extra_args],
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.starts += 1
        wait_port(self.port, 20)
        # rumqttd may refuse the first connects while it starts: wait for a CONNACK
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"probe-{time.monotonic_ns()}")
                c.connect("127.0.0.1", self.port)
                c.disconnect()
                break
            except OSError:
                time.sleep(0.05)
        return self

    def stop(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        if self.proc:
            self.log.close()
        self.proc = None
        wait_closed(self.port)

    def restart(self, sig=signal.SIGKILL, down_s=0.0):
        self.stop(sig)
        time.sleep(down_s)
        self.start()

    def logs(self):
        return "".join(p.read_text() for p in sorted(self.dir.glob("rumqttd-*.log")))


class Proxy:
    """A TCP proxy on its own port in front of a broker. `cut()` resets every
    connection (as a crashed broker would); while `hold()`, new connections are
    refused (reset at once) until `release()`."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.conns = []
        self.held = False
        self.cuts = 0
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                held = self.held
            if held:
                _reset(c)
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.target), timeout=5)
            except OSError:
                _reset(c)
                continue
            up.settimeout(None)
            for s in (c, up):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.conns.append((c, up))
            threading.Thread(target=self._pipe, args=(c, up), daemon=True).start()
            threading.Thread(target=self._pipe, args=(up, c), daemon=True).start()

    @staticmethod
    def _pipe(a, b):
        try:
            while True:
                d = a.recv(65536)
                if not d:
                    break
                b.sendall(d)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def cut(self):
        with self.lock:
            conns, self.conns = self.conns, []
            self.cuts += 1
        for c, up in conns:
            _reset(c)
            _reset(up)

    def hold(self):
        with self.lock:
            self.held = True

    def release(self):
        with self.lock:
            self.held = False

    def close(self):
        self.stopped = True
        self.cut()
        self.sock.close()


def _reset(s):
    """Closes with a reset (linger 0). The read side is shut first: it wakes a
    thread blocked in recv on this socket (sending nothing), which would otherwise
    hold the socket open, and the reset back, until its peer sent something."""
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.shutdown(socket.SHUT_RD)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


class Collector:
    """An independent paho subscriber. With `client_id` and clean_session False it
    keeps a persistent session and reconnects by itself (subscribing again each
    time); messages are kept in arrival order."""

    def __init__(self, port, filters=("#",), qos=1, client_id=None, persistent=False, tls=None,
                 username=None, password=None):
        self.messages = []
        self.cond = threading.Condition()
        self.filters = [(f, qos) for f in filters]
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        cid = client_id or f"collector-{os.getpid()}-{time.monotonic_ns()}"
        self.client_id = cid
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid,
                                  clean_session=not persistent)
        if tls:
            self.client.tls_set(**tls)
        if username:
            self.client.username_pw_set(username, password)
        self.client.reconnect_delay_set(min_delay=0.05, max_delay=0.5)
        self.client.max_inflight_messages_set(1000)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a, **k: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a, **k: (self.connected.clear(), self.subscribed.clear())
        self.port = port
        self._connect()
        self.client.loop_start()
        assert self.subscribed.wait(15), "no SUBACK"

    def _connect(self):
        deadline = time.monotonic() + 15
        while True:
            try:
                self.client.connect("127.0.0.1", self.port, keepalive=30)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _on_connect(self, client, userdata, flags, reason, props):
        if not reason.is_failure:
            self.connected.set()
            client.subscribe(self.filters)

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append((msg.topic, msg.payload, msg.retain))
            self.cond.notify_all()

    def wait_for(self, pred, timeout=30.0):
        """Waits until `pred(messages)` holds; the messages then, or None on timeout.

        The predicate runs on a copy, outside the lock, and at most a fifth of the time:
        predicates look at every message, so running one per arrival (under the lock
        the paho thread needs to append) made receiving quadratic, and a burst of 20k
        messages then took minutes to be counted although all had arrived."""
        deadline = time.monotonic() + timeout
        while True:
            snap = self.snapshot()
            t0 = time.monotonic()
            if pred(snap):
                return snap
            cost = time.monotonic() - t0
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with self.cond:
                self.cond.wait_for(lambda: len(self.messages) != len(snap), left)
            # let a burst accumulate before looking again
            time.sleep(min(max(4 * cost, 0.005), max(deadline - time.monotonic(), 0)))

    def wait_resubscribed(self, timeout=20):
        return self.subscribed.wait(timeout)

    def snapshot(self):
        with self.cond:
            return list(self.messages)

    def close(self):
        self.client.loop_stop()
        try:
            self.client.disconnect()
        except Exception:
            pass


def events(messages, prefix=""):
    """The JSON button events among `messages`: list of dicts, in arrival order."""
    out = []
    for topic, payload, _ in messages:
        if topic.startswith(prefix + "button/"):
            out.append(json.loads(payload))
    return out


class Daemon:
    """`pynq-mqtt run --board sim` with a stimulus; its log in the test's directory."""

    def __init__(self, binary, broker_url, tmp_path, *args, env=None, stimulus=None, speed=SIM_SPEED,
                 name="daemon", strace=None):
        self.log_path = tmp_path / f"{name}-{time.monotonic_ns()}.log"
        self.log = open(self.log_path, "w")
        cmd = [str(binary), "run", "--board", "sim", "--broker", broker_url, "--sim-speed", speed]
        if stimulus is not None:
            cmd += ["--stimulus", str(stimulus)]
        cmd += [str(a) for a in args]
        if strace:
            # only the write family stops the process (seccomp), so strace costs little
            cmd = ["strace", "--seccomp-bpf", "-f", "-c", "-o", str(strace),
                   "-e", "trace=write,writev,sendto,sendmsg,pwrite64", *cmd]
        full_env = dict(os.environ)
        full_env.setdefault("PYNQ_MQTT_LOG", "info")
        full_env.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=full_env)
        self.traced = bool(strace)

    def pid(self):
        """The daemon's pid (under strace, strace's child)."""
        if not self.traced:
            return self.proc.pid
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            kids = open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read().split()
            if kids:
                return int(kids[0])
            time.sleep(0.05)
        raise RuntimeError("strace started no daemon")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            os.kill(self.pid(), sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def wait(self, timeout=60):
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def text(self):
        return self.log_path.read_text()

    def wait_log(self, needle, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return needle in self.text()
            time.sleep(0.05)
        return False

    def final(self):
        """The counters of the daemon's last line (`stopped cleanly ...`, or `stopped
        with N events lost ...`)."""
        lines = [l for l in self.text().splitlines() if "stopped cleanly" in l or "stopped with" in l]
        assert lines, self.text()[-3000:]
        return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", lines[-1])}


# `run`'s exit status when it stopped as asked but events were lost (`lost=` > 0)
EXIT_EVENTS_LOST = 3


def expected_exit(f):
    """The exit status a stop with the final counters `f` must have."""
    return EXIT_EVENTS_LOST if f["lost"] else 0


def assert_every_edge_in_order(got, n, inputs=4):
    """`got` ((topic, payload, _) as a Collector keeps them) holds every one of the `n`
    edges that `stimulus` wrote round-robin over `inputs`, each input's in order."""
    for i in range(inputs):
        seen = [p for t, p, _ in got if t == f"button/{i}"]
        assert seen == [b"1", b"0"] * (n // (2 * inputs)), f"input {i}: not every edge, in order"


def stimulus(path, n, spacing_us=100, burst=1, gap_us=0, start_us=1000, inputs=4):
    """`n` edges round-robin over `inputs`; `burst` edges in consecutive microseconds,
    then `gap_us` of quiet. Returns the simulated duration in seconds."""
    level = [0] * inputs
    lines = []
    t = start_us
    for k in range(n):
        i = k % inputs
        level[i] ^= 1
        lines.append(f"{t} {i} {level[i]}")
        if burst > 1:
            t += 1 if (k + 1) % burst else gap_us
        else:
            t += spacing_us
    path.write_text("\n".join(lines) + "\n")
    return (t - start_us) / 1e6


def check_events(evs, n_captured, allow_duplicates, strict_levels=True):
    """Every captured event arrived (distinct sequence numbers == captured), per input
    in order (with alternating levels when the hardware dropped nothing); duplicates
    only if allowed. Returns the number of duplicates."""
    seqs = [e["seq"] for e in evs]
    distinct = set(seqs)
    assert len(distinct) == n_captured, f"{len(distinct)} distinct events delivered, {n_captured} captured"
    dups = len(seqs) - len(distinct)
    if not allow_duplicates:
        assert dups == 0, f"{dups} duplicates"
    # first delivery of each event, per input: levels alternate, sequence rises
    seen = set()
    last = {}
    for e in evs:
        if e["seq"] in seen:
            continue
        seen.add(e["seq"])
        i = e["input"]
        if i in last:
            assert e["seq"] > last[i]["seq"], f"input {i}: seq {e['seq']} after {last[i]['seq']}"
            if strict_levels:
                assert e["state"] != last[i]["state"], f"input {i}: level repeated at seq {e['seq']}"
        last[i] = e
    return dups


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a
    second, unrelated CA. Returns a dict of paths."""
    d.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    for ca in ("ca", "other-ca"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", f"{ca}.key",
            "-out", f"{ca}.crt", "-subj", f"/CN=pynq-mqtt test {ca}")
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}.key", "-out", f"{who}.csr",
            "-subj", f"/CN={who}")
        run("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-out", f"{who}.crt", "-extfile", f"{who}.ext")
    return {k: d / f"{k.replace('_', '.')}" for k in
            ("ca_crt", "other-ca_crt", "server_crt", "server_key", "client_crt", "client_key")}


class Pub:
    """One connected client for many publishes (a connection per message is slow)."""

    def __init__(self, port):
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"pub-{time.monotonic_ns()}")
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def __call__(self, topic, payload, qos=1, retain=False):
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()
