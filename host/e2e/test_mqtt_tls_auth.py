"""TLS (rustls) with a CA, a client certificate and a server name, and user name
and password, against mosquitto with certificates made by the test; user name and
password against the embedded rumqttd too. Misconfigurations end the daemon with
one clear line; the password never shows on the command line or in the log."""
import os
import subprocess
import time

import pytest

from mqtt_env import Collector, Daemon, Mosquitto, Rumqttd, make_certs, stimulus

PASSWORD = "pw-Xq83-never-shown"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_certs(tmp_path_factory.mktemp("certs"))


def passwd_file(d, user="board", password=PASSWORD):
    f = d / "mosquitto.passwd"
    f.write_text("")
    subprocess.run(["mosquitto_passwd", "-b", str(f), user, password], check=True, capture_output=True)
    return f


@pytest.fixture
def tls_broker(tmp_path, certs):
    """mosquitto: TLS only, client certificate required, user name and password."""
    pw = passwd_file(tmp_path)
    b = Mosquitto(tmp_path, listener_opts=(
        f"allow_anonymous false\npassword_file {pw}\n"
        f"cafile {certs['ca_crt']}\ncertfile {certs['server_crt']}\nkeyfile {certs['server_key']}\n"
        "require_certificate true\n"))
    b.start()
    yield b
    b.stop()


def tls_args(certs, ca=None):
    return ["--ca-file", ca or certs["ca_crt"], "--client-cert", certs["client_crt"],
            "--client-key", certs["client_key"], "--username", "board"]


def tls_sub(port, certs, filters=("#",)):
    return Collector(port, filters, tls={"ca_certs": str(certs["ca_crt"]), "certfile": str(certs["client_crt"]),
                                         "keyfile": str(certs["client_key"])},
                     username="board", password=PASSWORD)


def run_fails(binary, args, env=None, timeout=60):
    full = dict(os.environ)
    full.update(env or {})
    r = subprocess.run([str(binary), "run", "--board", "sim", *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, env=full)
    assert r.returncode != 0, r.stderr
    errors = [l for l in r.stderr.splitlines() if "error" in l]
    assert errors, r.stderr
    return errors[-1], r.stderr


def test_tls_client_certificate_and_password_file(binary, tls_broker, certs, tmp_path):
    pwf = tmp_path / "password"
    pwf.write_text(PASSWORD + "\n")
    stim = tmp_path / "s.stim"
    stimulus(stim, 200, spacing_us=500, start_us=800_000)
    sub = tls_sub(tls_broker.port, certs, ("button/#", "status", "led/#"))
    d = Daemon(binary, f"mqtts://127.0.0.1:{tls_broker.port}", tmp_path, *tls_args(certs),
               "--password-file", pwf, "--stats-interval", "0", stimulus=stim,
               env={"PYNQ_MQTT_LOG": "debug"})
    try:
        got = sub.wait_for(lambda m: sum(t.startswith("button/") for t, _, _ in m) >= 200, 30)
        assert got, d.text()[-2000:]
        assert ("status", b"online") in [(t, p) for t, p, _ in got]
        # commands come in over TLS too
        sub.client.publish("led/1/set", "on", qos=1).wait_for_publish(10)
        assert sub.wait_for(lambda m: ("led/1", b"1") in [(t, p) for t, p, _ in m], 10)
        # never on the command line, where every user sees it in ps
        cmdline = open(f"/proc/{d.proc.pid}/cmdline", "rb").read()
        assert PASSWORD.encode() not in cmdline
    finally:
        code = d.stop()
        sub.close()
    assert code == 0, d.text()[-2000:]
    assert "mqtts://127.0.0.1" in d.text()
    assert PASSWORD not in d.text(), "the password is in the (debug) log"


def test_password_from_the_environment_and_config_masks_it(binary, tls_broker, certs, tmp_path):
    stim = tmp_path / "s.stim"
    stimulus(stim, 20, spacing_us=1000, start_us=800_000)
    sub = tls_sub(tls_broker.port, certs, ("button/#",))
    env = {"PYNQ_MQTT_PASSWORD": PASSWORD}
    d = Daemon(binary, f"mqtts://127.0.0.1:{tls_broker.port}", tmp_path, *tls_args(certs),
               "--stats-interval", "0", stimulus=stim, env=env)
    try:
        assert sub.wait_for(lambda m: len(m) >= 20, 30), d.text()[-2000:]
    finally:
        assert d.stop() == 0
        sub.close()
    full = dict(os.environ, **env)
    r = subprocess.run([str(binary), "config", "--broker", f"mqtts://127.0.0.1:{tls_broker.port}",
                        *map(str, tls_args(certs))], capture_output=True, text=True, env=full, timeout=30)
    assert r.returncode == 0, r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    assert "***" in r.stdout and "PYNQ_MQTT_PASSWORD" in r.stdout, r.stdout


def test_wrong_ca_is_one_clear_error(binary, tls_broker, certs):
    line, _ = run_fails(binary, ["--broker", f"mqtts://127.0.0.1:{tls_broker.port}",
                                 *tls_args(certs, ca=certs["other-ca_crt"])], env={"PYNQ_MQTT_PASSWORD": PASSWORD})
    assert "not signed by a trusted CA" in line and "ca_file" in line, line


def test_server_name_mismatch_is_one_clear_error(binary, tls_broker, certs):
    line, _ = run_fails(binary, ["--broker", f"mqtts://127.0.0.1:{tls_broker.port}", *tls_args(certs),
                                 "--server-name", "broker.example"], env={"PYNQ_MQTT_PASSWORD": PASSWORD})
    assert "not valid for" in line and "broker.example" in line, line


def test_missing_client_certificate_is_one_clear_error(binary, tls_broker, certs):
    line, _ = run_fails(binary, ["--broker", f"mqtts://127.0.0.1:{tls_broker.port}", "--ca-file", certs["ca_crt"],
                                 "--username", "board"], env={"PYNQ_MQTT_PASSWORD": PASSWORD})
    assert "client certificate" in line, line


def test_wrong_password_is_one_clear_error(binary, tls_broker, certs):
    line, stderr = run_fails(binary, ["--broker", f"mqtts://127.0.0.1:{tls_broker.port}", *tls_args(certs)],
                             env={"PYNQ_MQTT_PASSWORD": "not-" + PASSWORD})
    assert "refused" in line and ("user name or password" in line or "not authorized" in line), line
    assert PASSWORD not in stderr


def test_unreadable_ca_file_fails_before_connecting(binary, tmp_path):
    line, _ = run_fails(binary, ["--broker", "mqtts://127.0.0.1:9", "--ca-file", tmp_path / "missing.pem"])
    assert "CA file" in line and "missing.pem" in line, line


@pytest.mark.parametrize("kind", ["mosquitto", "rumqttd"])
def test_user_name_and_password(binary, tmp_path, kind):
    if kind == "mosquitto":
        b = Mosquitto(tmp_path, listener_opts=f"allow_anonymous false\npassword_file {passwd_file(tmp_path)}\n")
    else:
        pwf = tmp_path / "broker-password"
        pwf.write_text(PASSWORD + "\n")
        b = Rumqttd(binary, tmp_path, extra_args=["--user", "board", "--password-file", str(pwf)])
    b.start()
    try:
        stim = tmp_path / "s.stim"
        stimulus(stim, 20, spacing_us=1000, start_us=800_000)
        sub = Collector(b.port, ("button/#",), username="board", password=PASSWORD)
        d = Daemon(binary, f"mqtt://127.0.0.1:{b.port}", tmp_path, "--username", "board", "--stats-interval", "0",
                   stimulus=stim, env={"PYNQ_MQTT_PASSWORD": PASSWORD})
        try:
            assert sub.wait_for(lambda m: len(m) >= 20, 30), d.text()[-2000:]
        finally:
            assert d.stop() == 0
            sub.close()
        if kind == "mosquitto":
            # CONNACK 5: a refusal that retrying will not fix ends the daemon
            line, _ = run_fails(binary, ["--broker", f"mqtt://127.0.0.1:{b.port}", "--username", "board"],
                                env={"PYNQ_MQTT_PASSWORD": "wrong"})
            assert "refused" in line, line
        else:
            # rumqttd closes without a CONNACK code: retried (it could be a restart),
            # with a hint in the log each time
            bad = Daemon(binary, f"mqtt://127.0.0.1:{b.port}", tmp_path, "--username", "board",
                         env={"PYNQ_MQTT_PASSWORD": "wrong"}, name="bad")
            assert bad.wait_log("user name or password refused?"), bad.text()
            assert bad.stop() == 0
    finally:
        b.stop()


def test_no_password_flag_exists(binary):
    r = subprocess.run([str(binary), "run", "--password", "x"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "--password" in r.stderr
    h = subprocess.run([str(binary), "run", "--help"], capture_output=True, text=True, timeout=30).stdout
    assert "--password-file" in h and "PYNQ_MQTT_PASSWORD" in h
    assert "--password <" not in h


def doctor_broker(binary, args, env):
    """`doctor --board sim` with these settings: (exit code, its broker line)."""
    full = dict(os.environ)
    full.update(env)
    r = subprocess.run([str(binary), "doctor", "--board", "sim", *map(str, args)], capture_output=True, text=True,
                       timeout=120, env=full)
    lines = [l for l in r.stdout.splitlines() if l[2:].startswith("broker ")]
    assert len(lines) == 1, r.stdout + r.stderr
    assert PASSWORD not in r.stdout + r.stderr
    return r.returncode, lines[0]


def test_doctor_checks_tls_and_the_login(binary, tls_broker, certs):
    url = f"mqtts://127.0.0.1:{tls_broker.port}"
    rc, line = doctor_broker(binary, ["--broker", url, *tls_args(certs)], {"PYNQ_MQTT_PASSWORD": PASSWORD})
    assert rc == 0 and line.startswith("✓"), line
    assert "accepted an MQTT connection" in line and "TLS" in line and "login accepted" in line, line


def test_doctor_names_a_wrong_password(binary, tls_broker, certs):
    rc, line = doctor_broker(binary, ["--broker", f"mqtts://127.0.0.1:{tls_broker.port}", *tls_args(certs)],
                             {"PYNQ_MQTT_PASSWORD": "not-" + PASSWORD})
    assert rc != 0 and line.startswith("✗"), line
    assert ("user name or password" in line or "not authorized" in line) and "fix: set --username" in line, line


def test_doctor_names_an_untrusted_certificate(binary, tls_broker, certs):
    rc, line = doctor_broker(binary, ["--broker", f"mqtts://127.0.0.1:{tls_broker.port}",
                                      *tls_args(certs, ca=certs["other-ca_crt"])], {"PYNQ_MQTT_PASSWORD": PASSWORD})
    assert rc != 0 and line.startswith("✗"), line
    assert "not signed by a trusted CA" in line and "fix: check ca_file" in line, line


def test_doctor_names_a_wrong_password_without_tls(binary, tmp_path):
    b = Mosquitto(tmp_path, listener_opts=f"allow_anonymous false\npassword_file {passwd_file(tmp_path)}\n")
    b.start()
    try:
        rc, line = doctor_broker(binary, ["--broker", f"mqtt://127.0.0.1:{b.port}", "--username", "board"],
                                 {"PYNQ_MQTT_PASSWORD": "wrong"})
        assert rc != 0 and line.startswith("✗") and "fix: set --username" in line, line
        rc, line = doctor_broker(binary, ["--broker", f"mqtt://127.0.0.1:{b.port}", "--username", "board"],
                                 {"PYNQ_MQTT_PASSWORD": PASSWORD})
        assert rc == 0 and "login accepted" in line, line
    finally:
        b.stop()
