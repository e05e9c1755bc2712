"""Fault injection against the daemon on the simulated board and a real mosquitto:
the broker killed and restarted 10 times at QoS 1, SIGKILL of the daemon (the last
will), a subscriber that stops reading, a broker that is down at start (backoff, CPU
measured), a broker that refuses the connection. What other files already prove is
listed in docs/reliability.md (broker restarts at QoS 2, link cuts, retry buffer
overflow, SIGTERM at full rate, hardware overflow, interrupt faults)."""
import json
import os
import signal
import socket
import time

from conftest import free_port
from mqtt_env import Collector, Daemon, Mosquitto, check_events, events, stimulus

COMMON = ["--payload", "json", "--stats-interval", "0", "--reconnect-min", "0.05",
          "--reconnect-max", "0.5"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid, skip=("sim-clock",)):
    """CPU time (user + system) of every thread of `pid` but those named in `skip`
    (the simulated board's clock thread is the FPGA, not the daemon)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm in skip:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def stop_clean(d, sub):
    assert d.stop() == 0, d.text()[-3000:]
    f = d.final()
    assert sub.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= f["captured"], 60), \
        f"{len({e['seq'] for e in events(sub.snapshot())})} of {f['captured']} delivered"
    return f


def test_broker_restarted_10_times_at_qos1_loses_no_event(binary, tmp_path):
    """mosquitto (persistence on) goes down and up 10 times while 12k events stream
    at QoS 1; a persistent-session subscriber gets every captured event."""
    broker = Mosquitto(tmp_path, persistence=True).start()
    stim = tmp_path / "s.stim"
    n = 12000
    duration = stimulus(stim, n, spacing_us=500)
    sub = Collector(broker.port, ("button/#",), qos=1, client_id="faults-sub", persistent=True)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--qos", "1", *COMMON,
               "--buffer-capacity", str(n + 1000), "--client-id", "faults-daemon", stimulus=stim)
    try:
        assert d.wait_log("connected to broker"), d.text()
        for _ in range(10):
            time.sleep(duration / 11)
            broker.restart(signal.SIGTERM)
        time.sleep(duration / 11 + 1)
        f = stop_clean(d, sub)
        assert f["captured"] == n, f
        assert f["lost"] == 0 and f["dropped_retry_buffer"] == 0 and f["dropped_at_shutdown"] == 0, f
        assert f["reconnects"] >= 10, f
        time.sleep(0.5)
        check_events(events(sub.snapshot()), n, allow_duplicates=True)
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


def test_sigkill_of_the_daemon_makes_the_broker_publish_the_last_will(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    sub = Collector(broker.port, ("status",), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, *COMMON)
    try:
        assert sub.wait_for(lambda m: ("status", b"online", False) in m or ("status", b"online", True) in m, 20)
        d.stop(signal.SIGKILL)
        assert sub.wait_for(lambda m: [p for t, p, _ in m][-1] == b"offline", 20), sub.snapshot()
        # and it is retained: a subscriber that comes later sees `offline`
        late = Collector(broker.port, ("status",), qos=1)
        try:
            assert late.wait_for(lambda m: (("status", b"offline", True) in m), 10), late.snapshot()
        finally:
            late.close()
    finally:
        sub.close()
        broker.stop()


def test_a_subscriber_that_stops_reading_does_not_stall_the_daemon(binary, tmp_path):
    """A raw client subscribes to everything at QoS 1 and then never reads its socket
    (its receive buffer fills, the broker queues for it): the daemon keeps publishing,
    a healthy subscriber gets every event, and the daemon stops cleanly."""
    broker = Mosquitto(tmp_path).start()
    stall = socket.create_connection(("127.0.0.1", broker.port))
    stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    cid = b"stalled"
    connect = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
    stall.sendall(b"\x10" + bytes([len(connect)]) + connect)
    assert stall.recv(4)[:1] == b"\x20", "no CONNACK"
    topic = b"#"
    sub_body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x01"
    stall.sendall(b"\x82" + bytes([len(sub_body)]) + sub_body)
    stim = tmp_path / "s.stim"
    n = 20000
    stimulus(stim, n, spacing_us=150)
    good = Collector(broker.port, ("button/#",), qos=1)
    # fast: the simulated clock waits for the drain, so the hardware loses nothing
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--qos", "1", *COMMON, stimulus=stim,
               speed="fast")
    try:
        assert good.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= n, 60), \
            f"{len({e['seq'] for e in events(good.snapshot())})} of {n} arrived while one subscriber stalls"
        f = stop_clean(d, good)
        assert f["captured"] == n and f["lost"] == 0, f
    finally:
        good.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        stall.close()
        broker.stop()


def test_a_broker_down_at_start_is_retried_with_backoff_and_no_busy_loop(binary, tmp_path):
    """Nothing listens on the broker's port for 8 s: the daemon retries with growing
    delays (few attempts, not thousands), uses under 20 % of a core meanwhile
    (generous bound, the simulated board's clock thread excluded; measured figure in
    docs/reliability.md), keeps what it captures, and delivers it once the broker is
    up."""
    port = free_port()
    stim = tmp_path / "s.stim"
    stimulus(stim, 400, spacing_us=5000, start_us=200_000)  # 2 s of events while down
    d = Daemon(binary, f"mqtt://127.0.0.1:{port}", tmp_path, "--qos", "1", "--payload", "json",
               "--stats-interval", "0", "--reconnect-min", "0.1", "--reconnect-max", "2", stimulus=stim)
    try:
        assert d.wait_log("cannot connect to broker", 20), d.text()
        time.sleep(1)
        c0, t0 = cpu_seconds(d.pid()), time.monotonic()
        time.sleep(6)
        used = (cpu_seconds(d.pid()) - c0) / (time.monotonic() - t0)
        attempts = d.text().count("cannot connect to broker")
        print(f"broker down: daemon CPU {used * 100:.2f} % of a core, {attempts} attempts in ~8 s")
        assert used < 0.20, f"{used * 100:.1f} % of a core while the broker is down"
        assert 3 <= attempts <= 20, f"{attempts} connection attempts in ~8 s"
        assert d.proc.poll() is None, "the daemon gave up"
        broker = Mosquitto(tmp_path, port=port)
        sub = Collector  # started after the broker
        broker.start()
        s = sub(port, ("button/#",), qos=1)
        try:
            assert d.wait_log("connected to broker", 20), d.text()[-2000:]
            f = stop_clean(d, s)
            assert f["captured"] == 400 and f["lost"] == 0, f
        finally:
            s.close()
            broker.stop()
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)


def test_a_refusing_broker_at_start_is_one_clear_line(binary, tmp_path):
    """A broker that refuses this client (bad credentials) at the first connect: one
    error line naming the broker, exit non-zero, no retry storm."""
    pw = tmp_path / "passwd"
    pw.write_text("")
    broker = Mosquitto(tmp_path, listener_opts=f"allow_anonymous false\npassword_file {pw}\n").start()
    try:
        d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, *COMMON)
        code = d.wait(60)
        text = d.text()
        errors = [l for l in text.splitlines() if "error" in l.lower()]
        assert code != 0, text
        assert errors and str(broker.port) in errors[-1], text
        assert text.count("cannot connect") <= 1, text
    finally:
        broker.stop()
