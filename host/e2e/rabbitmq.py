"""A RabbitMQ cluster on loopback for the failover tests: Debian's rabbitmq-server
with its MQTT plugin, three nodes started by the test with their own names, ports
and data directories under the test's temporary directory, joined with
`rabbitmqctl join_cluster`.

Everything stays on 127.0.0.1: long node names `rabbitN@127.0.0.1`, epmd bound to
loopback on a port of its own, Erlang distribution and every listener bound to
127.0.0.1 (traffic beyond loopback is not allowed on the test machines, and a
host name may resolve elsewhere)."""
import concurrent.futures
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import time

from mqtt_env import free_port, wait_port

RABBIT_BIN = pathlib.Path("/usr/lib/rabbitmq/bin")


def available():
    return (RABBIT_BIN / "rabbitmq-server").exists() and shutil.which("erl") is not None


# The strongest guarantee RabbitMQ's MQTT plugin (3.10) offers a persistent session
# across a node failure: its queue is a quorum queue (Raft, replicated on every node,
# available while a majority is up); a classic queue lives on one node and is gone
# with it (see docs/fleet.md, "What the broker guarantees").
CONF = """\
listeners.tcp.default = 127.0.0.1:{amqp}
mqtt.listeners.tcp.default = 127.0.0.1:{mqtt}
mqtt.allow_anonymous = true
mqtt.durable_queue_type = quorum
loopback_users = none
log.console = false
log.file.level = info
"""


class Node:
    def __init__(self, cluster, k):
        self.cluster = cluster
        self.k = k
        self.name = f"rabbit{k}@127.0.0.1"
        self.amqp, self.mqtt, self.dist = free_port(), free_port(), free_port()
        self.dir = cluster.dir / f"rabbit{k}"
        self.dir.mkdir(parents=True)
        (self.dir / "rabbitmq.conf").write_text(CONF.format(amqp=self.amqp, mqtt=self.mqtt))
        (self.dir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        self.proc = None

    def env(self):
        e = dict(self.cluster.env)
        d = self.dir
        e.update(
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.amqp),
            RABBITMQ_DIST_PORT=str(self.dist),
            RABBITMQ_CONFIG_FILE=str(d / "rabbitmq.conf"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(d / "enabled_plugins"),
            RABBITMQ_MNESIA_BASE=str(d / "mnesia"),
            RABBITMQ_LOG_BASE=str(d / "log"),
            RABBITMQ_PID_FILE=str(d / "pid"),
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}",
        )
        return e

    def start(self):
        self.log = open(self.dir / "stdout.log", "w")
        self.proc = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env=self.env(),
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return self

    def ctl(self, *args, timeout=120, check=True):
        r = subprocess.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.name, *args],
                           env=self.env(), capture_output=True, text=True, timeout=timeout)
        if check:
            assert r.returncode == 0, f"rabbitmqctl {' '.join(args)} on {self.name}: {r.stdout}{r.stderr}"
        return r

    def wait_up(self, timeout=120):
        """The node booted (`await_startup`; it fails at once while the node has not
        yet registered with epmd) and its MQTT listener accepts."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"{self.name} exited: {self.logs()[-3000:]}"
            r = self.ctl("await_startup", "--timeout", str(timeout), timeout=timeout + 30, check=False)
            if r.returncode == 0:
                break
            assert time.monotonic() < deadline, f"{self.name} did not start: {r.stdout}{r.stderr}"
            time.sleep(0.5)
        wait_port(self.mqtt, timeout)

    def kill(self):
        """SIGKILL to the node's whole process group (the BEAM and its helpers): the
        node dies as a crashed machine would, without telling the cluster."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
        self.log.close()

    def logs(self):
        out = []
        for p in sorted((self.dir / "log").glob("*.log")):
            out.append(p.read_text(errors="replace"))
        return "\n".join(out)


class Cluster:
    """Three RabbitMQ nodes joined into one cluster, each with the MQTT plugin."""

    def __init__(self, tmp_path, n=3):
        assert available(), "rabbitmq-server is not installed: run scripts/setup"
        self.dir = tmp_path / "rabbitmq"
        home = self.dir / "home"
        home.mkdir(parents=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(f"PYNQMQTTE2E{time.monotonic_ns()}")
        cookie.chmod(0o400)
        epmd = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        self.env.update(HOME=str(home), RABBITMQ_USE_LONGNAME="true",
                        ERL_EPMD_ADDRESS="127.0.0.1", ERL_EPMD_PORT=str(epmd),
                        RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}")
        self.epmd_port = epmd
        self.nodes = [Node(self, k) for k in range(1, n + 1)]

    def start(self):
        t0 = time.monotonic()
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            node.wait_up()
        first = self.nodes[0]

        def join(node):
            node.ctl("stop_app")
            node.ctl("join_cluster", first.name)
            node.ctl("start_app")
            node.wait_up()

        # each rabbitmqctl call starts an Erlang VM: the two joins side by side
        with concurrent.futures.ThreadPoolExecutor(len(self.nodes)) as pool:
            for f in [pool.submit(join, n) for n in self.nodes[1:]]:
                f.result()
        status = first.ctl("cluster_status", "--formatter", "json").stdout
        for node in self.nodes:
            assert node.name in status, status
        self.start_s = time.monotonic() - t0
        return self

    def stop(self):
        for node in self.nodes:
            node.kill()
        # epmd outlives the nodes (it is shared by design); it is ours, on our port
        for _ in range(20):
            r = subprocess.run(["epmd", "-port", str(self.epmd_port), "-kill"], env=self.env,
                               capture_output=True, text=True, timeout=10)
            if "Killed" in r.stdout or not port_open(self.epmd_port):
                break
            time.sleep(0.25)

    def listening_beyond_loopback(self):
        """Sockets of this cluster's processes that listen on anything but 127.0.0.1."""
        r = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True)
        pids = {str(n.proc.pid) for n in self.nodes if n.proc}
        bad = []
        for line in r.stdout.splitlines():
            cols = line.split()
            local = cols[3] if len(cols) > 3 else ""
            loopback = local.startswith(("127.0.0.1:", "[::1]:"))
            if any(f"pid={p}," in line for p in pids) and not loopback:
                bad.append(line)
        return bad


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
