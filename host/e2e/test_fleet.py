"""Issue 15: a board that fits in a fleet. A prefix always ends in `/`; every
subscription filter is checked; the default client id comes from the board's MAC;
two daemons that fight over one id or one `status` topic say so, once, with the fix."""
import os
import time
import subprocess

import pytest

from mqtt_env import Collector, Daemon, Mosquitto, free_port, stimulus


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}
    env.update(extra)
    return env


def run(binary, *args, env=None, timeout=30):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=env or clean_env())


def key(out, name):
    for line in out.splitlines():
        body, _, _ = line.partition("  # ")
        k, _, v = body.partition("=")
        if k.strip() == name:
            return v.strip()
    raise AssertionError(f"{name} not in {out}")


def test_a_prefix_without_its_slash_gets_one(binary, tmp_path):
    r = run(binary, "config", "--prefix", "pynq")
    assert r.returncode == 0, r.stderr
    assert key(r.stdout, "prefix") == '"pynq/"', r.stdout
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "s.stim"
    stimulus(stim, 4, spacing_us=1000, start_us=800_000)
    sub = Collector(broker.port, ("#",))
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--prefix", "pynq",
               "--stats-interval", "0", stimulus=stim, env=clean_env())
    try:
        got = sub.wait_for(lambda m: sum(t.startswith("pynq/button/") for t, _, _ in m) >= 4, 20)
        assert got, d.text()[-2000:]
        topics = {t for t, _, _ in got}
        assert "pynq/status" in topics, topics
        assert not [t for t in topics if t.startswith("pynq") and not t.startswith("pynq/")], topics
    finally:
        try:
            assert d.stop() == 0
        finally:
            sub.close()
            broker.stop()


def test_the_simulators_view_sees_a_prefix_without_its_slash(binary, tmp_path):
    port = free_port()
    r = run(binary, "sim", "--port", port, "--prefix", "pynq", "--duration", "2", timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    # the view subscribed to `pynq/#` (it used `pynq#`, refused, and showed nothing)
    assert "pynq/status" in r.stdout and "online" in r.stdout, r.stdout + r.stderr[-2000:]


def test_a_bad_rule_filter_is_refused_with_its_line(binary, tmp_path):
    for bad in ("button#", "a/+b", "a/#/b"):
        cfg = tmp_path / "rule.toml"
        cfg.write_text(f'[[rule]]\ntopic = "{bad}"\n')
        r = run(binary, "config", "--config", cfg)
        err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
        assert r.returncode != 0 and "topic" in err and "filter" in err, (bad, r.stdout, err)


def fake_board(tmp_path, name, mac):
    """A sysfs and procfs with one network interface of MAC `mac` (no default route)."""
    root = tmp_path / name
    iface = root / "sys/class/net/eth0"
    iface.mkdir(parents=True)
    (iface / "address").write_text(mac + "\n")
    lo = root / "sys/class/net/lo"
    lo.mkdir(parents=True)
    (lo / "address").write_text("00:00:00:00:00:00\n")
    (root / "proc/net").mkdir(parents=True)
    return {"PYNQ_MQTT_TEST_SYSFS_ROOT": str(root / "sys"), "PYNQ_MQTT_TEST_PROCFS_ROOT": str(root / "proc")}


@pytest.mark.release
def test_the_default_client_id_is_the_boards_own(binary, tmp_path):
    a = run(binary, "config", env=clean_env(**fake_board(tmp_path, "a", "00:18:3E:0A:1B:2C")))
    b = run(binary, "config", env=clean_env(**fake_board(tmp_path, "b", "00:18:3e:0a:1b:2d")))
    assert a.returncode == 0 and b.returncode == 0, a.stderr + b.stderr
    assert key(a.stdout, "client_id") == '"pynq-mqtt-0a1b2c"', a.stdout
    assert key(b.stdout, "client_id") == '"pynq-mqtt-0a1b2d"', b.stdout
    assert key(a.stdout, "ha_device_name") == '"PYNQ 0a1b2c"', a.stdout
    # the simulated board has its fixed, documented id
    s = run(binary, "config", "--board", "sim")
    assert key(s.stdout, "client_id") == '"pynq-mqtt-sim"', s.stdout


@pytest.mark.release
def test_the_sim_command_connects_as_the_simulated_board(binary, tmp_path):
    """`pynq-mqtt sim` (scripts/demo's command) is the simulated board, so its default id
    is the simulator's, never one made from this machine's MAC; its log says which.
    (The release build once took it for a board: clap tells an argument a subcommand
    lacks, here --board, only in debug builds.)"""
    # (this machine's own interfaces: a faked board would make the simulator play it)
    env = clean_env()
    r = run(binary, "sim", "--port", free_port(), "--duration", "1", "--stats-interval", "0",
            env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "client_id=pynq-mqtt-sim " in r.stderr, r.stderr
    # the file cannot make it a board either, nor can the environment
    conf = tmp_path / "board.toml"
    conf.write_text('board = "uio"\n')
    r = run(binary, "sim", "--config", conf, "--port", free_port(), "--duration", "1",
            "--stats-interval", "0", env=dict(env, PYNQ_MQTT_BOARD="uio"))
    assert r.returncode == 0 and "client_id=pynq-mqtt-sim " in r.stderr, r.stdout + r.stderr


def test_the_id_is_in_the_connect_line_the_stats_and_discovery(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    sub = Collector(broker.port, ("#",))
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "1",
               "--ha-discovery", "true", env=clean_env(**fake_board(tmp_path, "a", "00:18:3e:0a:1b:2c")))
    try:
        got = sub.wait_for(lambda m: any(t == "stats" for t, _, _ in m), 20)
        assert got, d.text()[-2000:]
        stats = [p for t, p, _ in got if t == "stats"][0]
        assert '"client_id":"pynq-mqtt-0a1b2c"' in stats.decode(), stats
        configs = [p.decode() for t, p, _ in got if t.startswith("homeassistant/")]
        assert configs and all('"identifiers":["pynq-mqtt-0a1b2c"]' in c for c in configs), configs[:1]
        assert d.wait_log("connected to broker")
        line = [l for l in d.text().splitlines() if "connected to broker" in l][0]
        assert "client_id=pynq-mqtt-0a1b2c" in line, line
    finally:
        try:
            assert d.stop() == 0
        finally:
            sub.close()
            broker.stop()


TAKEOVER = "uses this client id"
SHARED = "another device publishes `online` on this board's status topic"


def test_two_daemons_with_one_client_id_say_it_once(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    url = f"mqtt://127.0.0.1:{broker.port}"
    a = Daemon(binary, url, tmp_path, "--client-id", "pynq-mqtt-pynq", "--stats-interval", "0",
               name="a", env=clean_env())
    try:
        assert a.wait_log("connected to broker", 20), a.text()[-2000:]
        b = Daemon(binary, url, tmp_path, "--client-id", "pynq-mqtt-pynq", "--stats-interval", "0",
                   name="b", env=clean_env())
        try:
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and TAKEOVER not in a.text() + b.text():
                time.sleep(0.2)
            time.sleep(3)
            logs = a.text() + b.text()
            lines = [l for l in logs.splitlines() if TAKEOVER in l]
            assert lines, logs[-3000:]
            # one line per daemon at most, and it names the cause and the fix
            assert all(t.count(TAKEOVER) <= 1 for t in (a.text(), b.text())), lines
            assert '"pynq-mqtt-pynq"' in lines[0] and 'prefix = "pynq/pynq/"' in lines[0], lines[0]
        finally:
            b.stop()
    finally:
        a.stop()
        broker.stop()


def test_two_boards_with_their_own_ids_coexist_and_a_shared_status_is_named(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    url = f"mqtt://127.0.0.1:{broker.port}"
    a = Daemon(binary, url, tmp_path, "--stats-interval", "0", name="a",
               env=clean_env(**fake_board(tmp_path, "a", "00:18:3e:0a:1b:2c")))
    try:
        assert a.wait_log("connected to broker", 20), a.text()[-2000:]
        b = Daemon(binary, url, tmp_path, "--stats-interval", "0", name="b",
                   env=clean_env(**fake_board(tmp_path, "b", "00:18:3e:0a:1b:2d")))
        try:
            assert b.wait_log("connected to broker", 20), b.text()[-2000:]
            # both with the default (empty) prefix: a sees b's `online` on its `status`
            assert a.wait_log(SHARED, 20), a.text()[-2000:]
            time.sleep(3)
            for d in (a, b):
                t = d.text()
                assert t.count("connected to broker") == 1, t[-2000:]
                assert TAKEOVER not in t and "connection to broker lost" not in t, t[-2000:]
            assert a.text().count(SHARED) == 1
            line = [l for l in a.text().splitlines() if SHARED in l][0]
            assert 'prefix = "pynq/0a1b2c/"' in line, line
        finally:
            assert b.stop() == 0
    finally:
        try:
            assert a.stop() == 0
        finally:
            broker.stop()
