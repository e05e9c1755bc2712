"""Secrets never leave the process: a full run at trace level (connect, events, LED
commands, stats, reconnect after a broker restart, clean stop), `config` and a
failing connect with the wrong password are searched for the password; so are the
daemon's command line and every message on the broker."""
import signal
import subprocess

from conftest import publish
from mqtt_env import Collector, Daemon, Mosquitto, stimulus

SECRET = "s3cret-Zq71-must-not-leak"


def test_the_password_is_in_no_log_command_line_or_message(binary, tmp_path):
    pw = tmp_path / "passwd"
    pw.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(pw), "board", SECRET], check=True, capture_output=True)
    broker = Mosquitto(tmp_path, persistence=True,
                       listener_opts=f"allow_anonymous false\npassword_file {pw}\n").start()
    pwfile = tmp_path / "board.password"
    pwfile.write_text(SECRET + "\n")
    pwfile.chmod(0o600)
    conf = tmp_path / "config.toml"
    conf.write_text(f'username = "board"\npassword_file = "{pwfile}"\nstats_interval = 1\nqos = 1\n')
    stim = tmp_path / "s.stim"
    stimulus(stim, 200, spacing_us=2000, start_us=500_000)
    sub = Collector(broker.port, ("#",), qos=1, username="board", password=SECRET)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--config", conf, "--reconnect-min", "0.05",
               stimulus=stim, env={"PYNQ_MQTT_LOG": "trace"})
    try:
        assert d.wait_log("connected to broker"), d.text()[-2000:]
        cmdline = open(f"/proc/{d.pid()}/cmdline", "rb").read()
        assert SECRET.encode() not in cmdline
        assert sub.wait_for(lambda m: sum(t.startswith("button/") for t, _, _ in m) >= 200, 30)
        c = Collector  # LED command from another authenticated client
        p = c(broker.port, ("status",), username="board", password=SECRET)
        p.client.publish("led/1/set", "on", qos=1).wait_for_publish(10)
        p.close()
        assert sub.wait_for(lambda m: ("led/1", b"1", True) in m or ("led/1", b"1", False) in m, 15)
        broker.restart(signal.SIGTERM)
        assert d.wait_log("connected to broker", 5) and sub.wait_resubscribed()
        assert sub.wait_for(lambda m: sum(t == "stats" for t, _, _ in m) >= 2, 20)
    finally:
        assert d.stop() == 0, d.text()[-2000:]
        sub.close()
    log = d.text()
    assert "TRACE" in log or "DEBUG" in log, "the run was not logged at trace level"
    assert SECRET not in log, "the password is in the daemon's trace log"
    assert all(SECRET.encode() not in p for _, p, _ in sub.snapshot()), "the password was published"
    # `config` shows where the password comes from, never the password
    r = subprocess.run([str(binary), "config", "--config", str(conf), "--broker", "mqtt://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and SECRET not in r.stdout + r.stderr, r.stdout + r.stderr
    # a refused login names the user, not the password it tried
    wrong = tmp_path / "wrong.password"
    wrong.write_text(SECRET[::-1] + "\n")
    conf.write_text(f'username = "board"\npassword_file = "{wrong}"\n')
    bad = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--config", conf,
                 env={"PYNQ_MQTT_LOG": "trace"}, name="wrong")
    code = bad.wait(60)
    broker.stop()
    assert code != 0
    assert SECRET[::-1] not in bad.text() and SECRET not in bad.text(), bad.text()[-2000:]
