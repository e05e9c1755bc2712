"""Issue 15 point 9: the small things a new user trips on, each held here."""
import os
import pathlib
import subprocess

from mqtt_env import Collector, Daemon, Mosquitto

ROOT = pathlib.Path(__file__).resolve().parents[2]


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}
    env.update(extra)
    return env


def run(binary, *args, timeout=30):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=clean_env())


def last_line(r):
    lines = r.stderr.strip().splitlines()
    return lines[-1] if lines else ""


def test_an_empty_name_is_refused_rather_than_shifting_the_others(binary):
    r = run(binary, "config", "--input-names", "a,,c")
    err = last_line(r)
    assert r.returncode != 0 and "--input-names" in err and "name 2 of 3 is empty" in err, r.stdout + err
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = run(binary, "config", "--input-names", "a,b,c")
    assert r.returncode == 0 and '["a", "b", "c"]' in r.stdout, r.stderr


def test_more_names_than_inputs_warn_at_start(binary, sim_shape, tmp_path):
    broker = Mosquitto(tmp_path).start()
    # three names more than the board has inputs
    names = [chr(ord("a") + i) for i in range(sim_shape[0] + 3)]
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
               "--input-names", ",".join(names), env=clean_env())
    try:
        assert d.wait_log("connected to broker", 20), d.text()[-2000:]
        lines = [l for l in d.text().splitlines() if "input_names" in l and "WARN" in l]
        unused = ", ".join(names[-3:])
        assert len(lines) == 1 and f"{len(names)} names" in lines[0] and f"unused: {unused}" in lines[0], \
            d.text()[-2000:]
    finally:
        try:
            assert d.stop() == 0
        finally:
            broker.stop()


def test_a_password_in_the_file_points_to_password_file(binary, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('username = "u"\npassword = "x"\n')
    r = run(binary, "config", "--config", cfg)
    err = last_line(r)
    assert r.returncode != 0 and "line 2" in err and "unknown key `password`" in err, err
    assert "password_file" in err and "PYNQ_MQTT_PASSWORD" in err, err


def test_keep_alive_zero_is_mqtts_no_keep_alive(binary, tmp_path):
    """0 is valid MQTT ("no keep-alive"): accepted, sent as 0 in CONNECT (mosquitto logs
    `k0`), and the daemon publishes; TCP keep-alive watches the idle link instead."""
    r = run(binary, "config", "--keep-alive", "0")
    assert r.returncode == 0 and "keep_alive = 0" in r.stdout, r.stderr
    r = run(binary, "config", "--keep-alive", "1.5")
    assert r.returncode != 0 and "whole seconds" in last_line(r), last_line(r)
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "two.stim"
    stim.write_text("300000 0 1\n400000 0 0\n")
    sub = Collector(broker.port, ("button/#",))
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
               "--keep-alive", "0", stimulus=stim, env=clean_env())
    try:
        got = sub.wait_for(lambda m: len(m) >= 2, 20)
        assert got and [p for _, p, _ in got][:2] == [b"1", b"0"], d.text()[-2000:]
        connects = [ln for ln in broker.logs().splitlines() if "New client connected" in ln and "pynq-mqtt" in ln]
        assert connects and all(ln.rstrip(".").endswith("k0)") for ln in connects), connects
    finally:
        try:
            assert d.stop() == 0
        finally:
            sub.close()
            broker.stop()


def test_a_stimulus_with_a_byte_order_mark_runs(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "bom.stim"
    stim.write_bytes(b"\xef\xbb\xbf800000 0 1\n900000 0 0\n")
    sub = Collector(broker.port, ("button/#",))
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
               stimulus=stim, env=clean_env())
    try:
        got = sub.wait_for(lambda m: len(m) >= 2, 20)
        assert got and [p for _, p, _ in got][:2] == [b"1", b"0"], d.text()[-2000:]
    finally:
        try:
            assert d.stop() == 0
        finally:
            sub.close()
            broker.stop()


def test_a_missing_stimulus_says_its_cause_once(binary, tmp_path):
    r = run(binary, "run", "--board", "sim", "--broker", "mqtt://127.0.0.1:1",
            "--stimulus", tmp_path / "none.stim")
    assert r.returncode != 0
    assert r.stderr.count("No such file") == 1 and "none.stim" in r.stderr, r.stderr


def test_the_readme_topic_table_has_led_set():
    text = (ROOT / "README.md").read_text()
    table = text.split("## What a subscriber sees")[1].split("##")[0]
    assert "| `<prefix>led/set` |" in table, table


def test_a_rule_without_payloads_acts_on_presses_only(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    cfg = tmp_path / "rule.toml"
    cfg.write_text('stats_interval = 0\n[[rule]]\ntopic = "button/0"\naction = "toggle"\nleds = [1]\n')
    stim = tmp_path / "press.stim"
    # two presses, each with its release: two toggles, so LED 1 ends off again
    stim.write_text("500000 0 1\n600000 0 0\n900000 0 1\n1000000 0 0\n")
    sub = Collector(broker.port, ("led/1", "button/0"))
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--config", cfg, stimulus=stim,
               env=clean_env())
    try:
        assert sub.wait_for(lambda m: sum(t == "button/0" for t, _, _ in m) >= 4, 20), d.text()[-2000:]
        # toggles on releases too would pass through [0, 1, 0] on the way: wait for the end
        sub.wait_for(lambda m: len([1 for t, _, _ in m if t == "led/1"]) >= 5, 1.5)
        led = [p for t, p, _ in sub.snapshot() if t == "led/1"]
        assert led == [b"0", b"1", b"0"], led
    finally:
        try:
            assert d.stop() == 0
        finally:
            sub.close()
            broker.stop()
