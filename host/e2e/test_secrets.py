"""Secrets never leave the process: a full run at trace level (connect, events, LED
commands, stats, reconnect after a broker restart, clean stop), `config` and a
failing connect with the wrong password are searched for the password; so are the
daemon's command line and every message on the broker."""
import os
import pathlib
import shutil
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


def test_the_daemon_runs_unprivileged_with_no_capabilities(binary, tmp_path):
    """As the board's unit runs it: an ordinary user (here `nobody`, no groups) with
    no capabilities at all, and it works end to end (the simulated board needs no
    device; on a board the udev rule gives the group its /dev/uioN, tested in
    test_board_install.py and host/bus/tests/uio.rs)."""
    import pwd
    import pytest
    setpriv = shutil.which("setpriv")
    if os.geteuid() != 0 or not setpriv:
        pytest.skip("needs root and setpriv to switch to an unprivileged user")
    nobody = pwd.getpwnam("nobody")
    r = subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                        "test", "-x", str(binary)])
    if r.returncode != 0:
        pytest.skip(f"{binary} is not executable by nobody (checkout under a private directory)")
    import tempfile
    broker = Mosquitto(tmp_path).start()
    # pytest's tmp_path is private to root: the stimulus goes where nobody can read it
    public = pathlib.Path(tempfile.mkdtemp(prefix="pynq-mqtt-nobody-"))
    public.chmod(0o755)
    stim = public / "s.stim"
    stimulus(stim, 50, spacing_us=2000, start_us=300_000)
    stim.chmod(0o644)
    sub = Collector(broker.port, ("button/#",), qos=1)
    log = open(tmp_path / "nobody.log", "w")
    proc = subprocess.Popen([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                             "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                             str(binary), "run", "--board", "sim", "--broker", f"mqtt://127.0.0.1:{broker.port}",
                             "--stimulus", str(stim), "--stats-interval", "0"],
                            stdout=log, stderr=subprocess.STDOUT, cwd="/")
    try:
        assert sub.wait_for(lambda m: len(m) >= 50, 30), (tmp_path / "nobody.log").read_text()[-2000:]
        status = dict(l.split(":", 1) for l in open(f"/proc/{proc.pid}/status").read().splitlines() if ":" in l)
        assert status["Uid"].split()[0] == str(nobody.pw_uid)
        assert int(status["CapEff"].strip(), 16) == 0 and int(status["CapPrm"].strip(), 16) == 0
        assert status["NoNewPrivs"].strip() == "1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        # no RLIMIT_RTPRIO, no CAP_SYS_NICE: the drain's default real-time priority is
        # refused with one warning that says what it risks, and doctor says the same
        # without failing
        text = (tmp_path / "nobody.log").read_text()
        assert text.count("cannot run the event drain real-time") == 1 and "rt_priority = 0" in text, text
        r = subprocess.run([setpriv, f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
                            "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs",
                            str(binary), "doctor", "--board", "sim", "--broker", f"mqtt://127.0.0.1:{broker.port}"],
                           capture_output=True, text=True, timeout=60, cwd="/")
        assert r.returncode == 0, r.stdout + r.stderr
        line = [l for l in r.stdout.splitlines() if " realtime " in l]
        assert len(line) == 1 and line[0].startswith("! realtime") and "LimitRTPRIO=10" in line[0], r.stdout
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        sub.close()
        broker.stop()
        shutil.rmtree(public, ignore_errors=True)
