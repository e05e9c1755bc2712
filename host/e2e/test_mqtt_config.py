"""Settings: command line > environment > config file > defaults; unknown keys and
bad values are rejected with file, line and key; `pynq-mqtt config` shows the
effective configuration with each value's source and the password masked; the
daemon runs on what `config` shows."""
import os
import subprocess

from mqtt_env import Collector, Daemon, Mosquitto, stimulus


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}
    env.update(extra)
    return env


def config(binary, *args, env=None):
    return subprocess.run([str(binary), "config", *map(str, args)], capture_output=True, text=True,
                          timeout=30, env=env or clean_env())


def lines_by_key(out):
    """{key: (value, source)} of `config`'s output."""
    res = {}
    for line in out.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        body, _, source = line.partition("  # ")
        key, _, value = body.partition("=")
        res[key.strip()] = (value.strip(), source.strip())
    return res


def test_precedence_and_sources(binary, tmp_path):
    cfg = tmp_path / "pynq.toml"
    cfg.write_text('# a board\nprefix = "file/"\nqos = 1\npayload = "json"\nclient_id = "from-file"\n'
                   'input_names = ["btn0", "btn1"]\n\n[[rule]]\ntopic = "button/0"\naction = "toggle"\n')
    env = clean_env(PYNQ_MQTT_PREFIX="env/", PYNQ_MQTT_CLIENT_ID="from-env", PYNQ_MQTT_CONFIG=str(cfg))
    r = config(binary, "--client-id", "from-flag", env=env)
    assert r.returncode == 0, r.stderr
    k = lines_by_key(r.stdout)
    assert k["client_id"] == ('"from-flag"', "--client-id"), k["client_id"]
    assert k["prefix"] == ('"env/"', "PYNQ_MQTT_PREFIX"), k["prefix"]
    assert k["qos"] == ("1", f"{cfg}:3"), k["qos"]
    assert k["payload"] == ('"json"', f"{cfg}:4"), k["payload"]
    assert k["input_names"] == ('["btn0", "btn1"]', f"{cfg}:6")
    assert k["keep_alive"] == ("30", "default")
    assert k["broker"] == ('"mqtt://localhost:1883"', "default")
    assert "[[rule]]" in r.stdout and 'topic = "button/0"' in r.stdout


def test_a_flag_equal_to_its_variable_is_the_flag_and_a_bad_sim_speed_is_refused(binary, tmp_path):
    r = config(binary, "--qos", "1", env=clean_env(PYNQ_MQTT_QOS="1"))
    assert r.returncode == 0, r.stderr
    assert lines_by_key(r.stdout)["qos"] == ("1", "--qos")
    cfg = tmp_path / "speed.toml"
    cfg.write_text('prefix = "a/"\nsim_speed = "bogus"\n')
    r = config(binary, "--config", cfg)
    err = r.stderr.strip().splitlines()[-1]
    assert r.returncode != 0 and str(cfg) in err and "line 2" in err and "`sim_speed`" in err, err


def test_output_is_a_config_file_that_gives_the_same_configuration(binary, tmp_path):
    r1 = config(binary, "--qos", "2", "--prefix", "x/", "--led-names", "a,b", "--stats-interval", "5",
                "--reconnect-max", "2.5")
    assert r1.returncode == 0, r1.stderr
    again = tmp_path / "again.toml"
    again.write_text(r1.stdout)
    r2 = config(binary, "--config", again)
    assert r2.returncode == 0, r2.stderr
    v1 = {k: v for k, (v, _) in lines_by_key(r1.stdout).items()}
    v2 = {k: v for k, (v, _) in lines_by_key(r2.stdout).items()}
    assert v1 == v2


def test_unknown_key_names_file_line_and_key(binary, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('prefix = "a/"\n\nbrokr = "mqtt://x"\n')
    r = config(binary, "--config", cfg)
    assert r.returncode != 0
    err = r.stderr.strip().splitlines()[-1]
    assert str(cfg) in err and "line 3" in err and "`brokr`" in err and "`broker`" in err, err


def test_bad_values_name_their_source(binary, tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('prefix = "a/"\nqos = 7\n')
    r = config(binary, "--config", cfg)
    err = r.stderr.strip().splitlines()[-1]
    assert r.returncode != 0 and str(cfg) in err and "line 2" in err and "`qos`" in err, err
    cfg.write_text('max_inflight = "many"\n')
    err = config(binary, "--config", cfg).stderr.strip().splitlines()[-1]
    assert "line 1" in err and "`max_inflight`" in err and "whole number" in err, err
    r = config(binary, env=clean_env(PYNQ_MQTT_QOS="9"))
    err = r.stderr.strip().splitlines()[-1]
    assert r.returncode != 0 and "PYNQ_MQTT_QOS" in err and "0, 1 or 2" in err, err
    r = config(binary, "--broker", "tcp://h:1")
    assert r.returncode != 0 and "--broker" in r.stderr and "mqtt://" in r.stderr
    r = config(binary, "--ca-file", "/etc/hostname")
    assert r.returncode != 0 and "mqtts://" in r.stderr


def test_password_is_masked(binary, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("file-secret-123\n")
    r = config(binary, "--username", "u", "--password-file", pw)
    assert r.returncode == 0, r.stderr
    assert "file-secret-123" not in r.stdout + r.stderr
    assert "# password = \"***\"" in r.stdout and str(pw) in r.stdout
    r = config(binary, "--username", "u", env=clean_env(PYNQ_MQTT_PASSWORD="env-secret-456"))
    assert "env-secret-456" not in r.stdout + r.stderr and "PYNQ_MQTT_PASSWORD" in r.stdout


def test_daemon_runs_on_the_config_file(binary, tmp_path):
    broker = Mosquitto(tmp_path).start()
    cfg = tmp_path / "pynq.toml"
    cfg.write_text(f'board = "sim"\nbroker = "mqtt://127.0.0.1:{broker.port}"\nprefix = "cfg/"\n'
                   'payload = "json"\nstats_interval = 0\ninput_names = ["b0", "b1", "b2", "b3"]\n')
    stim = tmp_path / "s.stim"
    stimulus(stim, 8, spacing_us=1000, start_us=800_000)
    sub = Collector(broker.port, ("#",))
    # the environment beats the file
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--config", cfg, stimulus=stim,
               env=dict(clean_env(), PYNQ_MQTT_PREFIX="env/"))
    try:
        got = sub.wait_for(lambda m: sum(t.startswith("env/button/") for t, _, _ in m) >= 8, 20)
        assert got, d.text()[-2000:]
        assert not [t for t, _, _ in got if t.startswith("cfg/")]
    finally:
        assert d.stop() == 0
        sub.close()
    # nothing on the command line but the file (and the stimulus)
    sub = Collector(broker.port, ("cfg/#",))
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--config", cfg, stimulus=stim,
               env=clean_env())
    try:
        got = sub.wait_for(lambda m: sum(t.startswith("cfg/button/") for t, _, _ in m) >= 8, 20)
        assert got, d.text()[-2000:]
        assert {t for t, _, _ in got if "/button/" in t} == {f"cfg/button/b{i}" for i in range(4)}
    finally:
        assert d.stop() == 0
        sub.close()
        broker.stop()
