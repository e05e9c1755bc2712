"""Issue 15: a board that fits in a fleet. A prefix always ends in `/`; every
subscription filter is checked; the default client id comes from the board's MAC;
two daemons that fight over one id or one `status` topic say so, once, with the fix."""
import os
import subprocess

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
        assert d.stop() == 0
        sub.close()


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
