"""The daemon warns once, at start, when its password file is readable by every
user and when the password would go in clear (`mqtt://`) to a broker off this
machine; it says nothing of the kind for a 0640 file and a loopback broker."""
import os
import signal
import subprocess
import time

SECRET = "Warn-Once-pw-77"


def run_briefly(binary, pwfile, broker, seconds=2.0):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}
    p = subprocess.Popen([str(binary), "run", "--board", "sim", "--broker", broker, "--username", "u",
                          "--password-file", str(pwfile), "--reconnect-min", "0.05", "--reconnect-max", "0.2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(seconds)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    return out + err


def test_a_readable_password_file_and_a_clear_password_are_warned_once(binary, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    pw.chmod(0o644)
    # 192.0.2.1 (TEST-NET-1) is off this machine; reconnects retry it many times
    log = run_briefly(binary, pw, "mqtt://192.0.2.1:1")
    assert SECRET not in log
    assert log.count("readable by every user") == 1 and str(pw) in log, log
    assert log.count("in clear to mqtt://192.0.2.1:1") == 1, log


def test_no_warning_for_a_private_file_and_a_loopback_broker(binary, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text(SECRET + "\n")
    pw.chmod(0o640)
    log = run_briefly(binary, pw, "mqtt://127.0.0.1:1", seconds=1.0)
    assert "daemon starting" in log, log
    assert "readable by every user" not in log and "in clear" not in log, log
