"""The daemon against brokers that flood it or stop making sense (issue 14, points 1,
4 and 9): memory stays bounded and button events keep flowing, a connection that no
longer works is given up within 2 x keep-alive, and QoS 0 events the broker never
received are not counted as published.

A flood of Home Assistant births goes through a real mosquitto; a broker that
stops reading, announces a huge frame, drips, or never acknowledges is the small
socket server in hostile_broker.py (a real broker cannot be made to do that).
Peak memory is the kernel's high-water mark of the daemon (VmHWM)."""
import contextlib
import signal
import subprocess
import time

from hostile_broker import HostileBroker
from mqtt_env import Collector, Daemon, Mosquitto, events, expected_exit, stimulus

COMMON = ["--payload", "json", "--stats-interval", "0", "--reconnect-min", "0.05",
          "--reconnect-max", "0.5", "--session", "clean"]
RSS_LIMIT_KIB = 32 * 1024
# the flood's own warnings (commands dropped or refused) are another point of the issue
QUIET = {"PYNQ_MQTT_LOG": "info,pynq_mqtt_bridge::link=error,pynq_mqtt_bridge::session=error"}


def vm_hwm_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def stop(d):
    hwm = vm_hwm_kib(d.pid()) if d.proc.poll() is None else None
    code = d.stop()
    return code, hwm


def test_a_flood_of_home_assistant_births_keeps_memory_bounded(binary, sim_shape, tmp_path):
    """100,000 `online` on homeassistant/status with discovery on, while 3,000 button
    events stream at QoS 1: every event arrives, and peak RSS stays under 32 MiB."""
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "s.stim"
    n = 3000
    stimulus(stim, n, spacing_us=3000)
    sub = Collector(broker.port, ("button/#", "homeassistant/+/+/+/config"), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--qos", "1", "--ha-discovery", "true",
               *COMMON, stimulus=stim)
    try:
        assert d.wait_log("connected to broker"), d.text()[-3000:]
        flood = subprocess.run(["mosquitto_pub", "-p", str(broker.port), "-t", "homeassistant/status", "-l"],
                               input=b"online\n" * 100_000, timeout=120)
        assert flood.returncode == 0
        got = sub.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= n, 120)
        code, hwm = stop(d)
        delivered = len({e["seq"] for e in events(sub.snapshot())})
        print(f"HA birth flood: VmHWM {hwm} KiB, {delivered} of {n} events delivered")
        assert got is not None, f"{delivered} of {n} events delivered during the flood"
        assert code == 0, d.text()[-3000:]
        assert hwm <= RSS_LIMIT_KIB, f"peak RSS {hwm} KiB under a flood of births"
        # one config per input and LED at connect, then once per 30 s at most
        configs = sum(1 for t, _, _ in sub.snapshot() if t.endswith("/config"))
        print(f"HA birth flood: {configs} discovery configs received")
        assert configs <= sum(sim_shape) * 4, f"{configs} discovery configs for one flood"
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


@contextlib.contextmanager
def against(binary, tmp_path, mode, qos, ka, n, spacing_us, env=None):
    """The daemon (QoS `qos`, keep-alive `ka`, `n` events `spacing_us` apart) against
    the small broker in `mode`; both are gone afterwards, whatever the test did."""
    broker = HostileBroker(mode)
    stim = tmp_path / "s.stim"
    stimulus(stim, n, spacing_us=spacing_us)
    d = Daemon(binary, broker.url(), tmp_path, "--qos", qos, "--keep-alive", ka, *COMMON,
               stimulus=stim, env=env)
    try:
        yield broker, d
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.close()


def every_event_published(d, n, what):
    """Stops the daemon once the stream is over; every event went out on a later connection."""
    code, _ = stop(d)
    f = d.final()
    print(f"{what}; final {f}")
    assert code == 0, d.text()[-3000:]
    assert f["captured"] == n and f["published"] == n and f["lost"] == 0, f


def test_a_broker_that_sends_and_does_not_read_is_pushed_back(binary, tmp_path):
    """The broker floods QoS 1 LED commands and reads nothing: the daemon stops
    reading once its control buffer is full (peak RSS under 32 MiB), gives the
    connection up, and delivers every event on the next one."""
    ka, n = 10, 2000
    with against(binary, tmp_path, "flood", 1, ka, n, 5000, env=QUIET) as (broker, d):
        assert broker.wait_connections(1, 20), d.text()[-3000:]
        # the flood runs until the daemon gives the connection up
        recycled = broker.wait_connections(2, 2 * ka + 30)
        first = broker.connections()[0]
        hwm_flood = vm_hwm_kib(d.pid())
        print(f"stop-reading flood: VmHWM {hwm_flood} KiB, given up: {recycled}")
        assert hwm_flood <= RSS_LIMIT_KIB, f"peak RSS {hwm_flood} KiB under the flood"
        assert recycled, "the flooding connection was never given up"
        time.sleep(n * 0.005 + 2)
        every_event_published(d, n, f"stop-reading flood: VmHWM {hwm_flood} KiB during; "
                              f"given up after {first.closed - first.opened:.1f} s")


def given_up_within(broker, d, limit_s, deadline_s):
    """Waits (at most deadline_s) for the first connection to end; returns its life."""
    assert broker.wait_connections(1, 20), d.text()[-3000:]
    c = broker.connections()[0]
    end = time.monotonic() + deadline_s
    while c.closed is None and time.monotonic() < end:
        time.sleep(0.1)
    assert c.closed is not None, f"the connection is still open after {deadline_s} s"
    life = c.closed - c.opened
    assert life <= limit_s, f"given up after {life:.1f} s, more than {limit_s} s"
    return life


def test_a_huge_control_frame_drops_the_connection(binary, tmp_path):
    """The broker announces a PUBACK of 268,435,455 bytes and then answers normally
    (its acks and ping answers fall inside the announced frame): the daemon drops
    the connection at once rather than skip, and delivers every event."""
    ka, n = 3, 1000
    with against(binary, tmp_path, "huge", 1, ka, n, 3000) as (broker, d):
        life = given_up_within(broker, d, 2 * ka, 2 * ka + 20)
        time.sleep(n * 0.003 + 2)
        every_event_published(d, n, f"huge frame: given up after {life:.2f} s")


def test_a_dripping_broker_is_given_up_within_two_keep_alives(binary, tmp_path):
    """One byte a second of a PUBLISH that never ends, nothing else: not a sign of
    life. The daemon (QoS 0, writing events all along) gives it up within 2 x
    keep-alive."""
    ka = 3
    with against(binary, tmp_path, "drip", 0, ka, 3000, 5000) as (broker, d):
        life = given_up_within(broker, d, 2 * ka + 1, 2 * ka + 30)
        print(f"drip: given up after {life:.2f} s (keep-alive {ka} s)")
        assert "no answer from the broker" in d.text(), d.text()[-3000:]


def test_events_never_acknowledged_recycle_the_connection(binary, tmp_path):
    """The broker answers pings but acknowledges nothing: the daemon gives the
    connection up within 2 x keep-alive, and the events go out on the next one."""
    ka, n = 3, 1000
    with against(binary, tmp_path, "noack", 2, ka, n, 3000) as (broker, d):
        life = given_up_within(broker, d, 2 * ka + 1, 2 * ka + 30)
        time.sleep(n * 0.003 + 2)
        every_event_published(d, n, f"never acked: given up after {life:.2f} s")


def test_qos0_published_counts_only_what_the_broker_received(binary, tmp_path):
    """QoS 0 into a broker that stops reading: the daemon gives the connection up
    with bytes in its send queue. Events the broker's TCP never acknowledged are
    counted lost, so `published` is no more than the broker received, and
    published + lost = captured."""
    ka, n = 3, 6000
    with against(binary, tmp_path, "sink", 0, ka, n, 400) as (broker, d):
        assert broker.wait_connections(2, 2 * ka + 30), d.text()[-3000:]
        time.sleep(n * 0.0004 + 3)
        code, _ = stop(d)
        f = d.final()
        conns = broker.connections()
        received = conns[0].received + sum(c.events for c in conns[1:])
        print(f"QoS 0 on a dead link: connected again after {conns[1].opened - conns[0].opened:.1f} s; broker received "
              f"{received} (first connection {conns[0].received}); final {f}")
        # events were lost: the exit status says so (issue 15)
        assert code == expected_exit(f), d.text()[-3000:]
        assert f["published"] <= received, f"published={f['published']} but the broker received {received}"
        assert f["published"] + f["lost"] == f["captured"] == n, f


def test_keep_alive_is_bounded(binary):
    """A keep-alive of hours would leave a dead broker undetected for hours: the
    setting stops at 1200 s (detection within 40 minutes at worst)."""
    r = subprocess.run([str(binary), "config", "--keep-alive", "65535"], capture_output=True, text=True)
    assert r.returncode != 0 and "expected 0 to 1200 whole seconds" in r.stderr, (r.returncode, r.stdout, r.stderr)
    ok = subprocess.run([str(binary), "config", "--keep-alive", "1200"], capture_output=True, text=True)
    assert ok.returncode == 0 and "keep_alive = 1200" in ok.stdout, ok.stderr


def test_a_refused_subscription_is_an_error_never_swallowed(binary, tmp_path):
    """The broker answers the LED command filters with SUBACK's failure code (an ACL,
    say; stock mosquitto grants wildcard filters and checks at delivery instead):
    one ERROR line per filter, naming it, and the daemon goes on publishing."""
    with against(binary, tmp_path, "refuse", 0, 30, 20, 20_000) as (broker, d):
        assert d.wait_log("refused the subscription", 20), d.text()[-3000:]
        lines = [ln for ln in d.text().splitlines() if "refused the subscription" in ln]
        assert lines and all("ERROR" in ln for ln in lines), lines
        assert any("led/+/set" in ln for ln in lines), lines
        time.sleep(1.5)
        every_event_published(d, 20, f"refused subscription: {len(lines)} error lines")
