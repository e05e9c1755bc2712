"""Issue 15 point 8: `run` says what to do about the broker (doctor's hint, once),
and on a machine that is no Zynq, `--board uio` says so and suggests `pynq-mqtt sim`."""
import os
import subprocess
import time

from mqtt_env import Daemon, Mosquitto, free_port

HINT = "hint: "


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}
    env.update(extra)
    return env


def test_an_unreachable_broker_gets_doctors_hint_once(binary, tmp_path):
    d = Daemon(binary, f"mqtt://127.0.0.1:{free_port()}", tmp_path, "--stats-interval", "0",
               env=clean_env())
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and d.text().count("cannot connect to broker") < 4:
            time.sleep(0.1)
    finally:
        d.stop()
    text = d.text()
    assert text.count("cannot connect to broker") >= 4, text[-2000:]
    hints = [l for l in text.splitlines() if HINT in l]
    assert len(hints) == 1 and "start the broker" in hints[0], hints


def test_a_refused_login_gets_doctors_hint(binary, tmp_path):
    broker = Mosquitto(tmp_path, listener_opts="allow_anonymous false\n").start()
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--stats-interval", "0",
               env=clean_env())
    try:
        code = d.wait(30)
    finally:
        broker.stop()
    text = d.text()
    assert code != 0, text[-2000:]
    hints = [l for l in text.splitlines() if HINT in l]
    assert len(hints) == 1 and "--username" in hints[0], text[-2000:]


def test_board_uio_on_a_machine_without_a_zynq_suggests_the_simulator(binary, tmp_path):
    sys_ = tmp_path / "sys"
    (sys_ / "class").mkdir(parents=True)
    r = subprocess.run([str(binary), "run", "--board", "uio", "--sysfs-root", str(sys_),
                        "--dev-dir", str(tmp_path), "--proc-root", str(tmp_path),
                        "--broker", "mqtt://127.0.0.1:1"],
                       capture_output=True, text=True, timeout=30, env=clean_env())
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1, r.stderr
    assert "no PYNQ board here" in lines[0] and "pynq-mqtt sim" in lines[0], lines[0]
    assert "kernel command line" not in lines[0], lines[0]
