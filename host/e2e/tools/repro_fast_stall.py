# Reproduces an intermittent stall seen with --sim-speed fast (about 1 run in 10 on a loaded
# machine): the driver stops draining, the sim clock stays paused. See the closing note.
# Run from the repo root after building target/debug/pynq-mqtt: .venv/bin/python host/e2e/tools/repro_fast_stall.py
# (it writes under /tmp/stall).
import sys, pathlib, time, socket, json, shutil
pathlib.Path("/tmp/stall").mkdir(exist_ok=True)
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from mqtt_env import *
for attempt in range(12):
    tmp=pathlib.Path(f'/tmp/stall/r{attempt}'); shutil.rmtree(tmp, ignore_errors=True); tmp.mkdir()
    broker = Mosquitto(tmp).start()
    stall = socket.create_connection(("127.0.0.1", broker.port))
    stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    cid = b"stalled"
    connect = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
    stall.sendall(b"\x10" + bytes([len(connect)]) + connect)
    assert stall.recv(4)[:1] == b"\x20"
    topic = b"#"
    sub_body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x01"
    stall.sendall(b"\x82" + bytes([len(sub_body)]) + sub_body)
    stim = tmp / "s.stim"
    n = 20000
    stimulus(stim, n, spacing_us=150)
    good = Collector(broker.port, ("button/#",), qos=1)
    d = Daemon(pathlib.Path(__file__).resolve().parents[3] / 'target/debug/pynq-mqtt', f"mqtt://127.0.0.1:{broker.port}", tmp, "--qos", "1", "--payload", "json", "--stats-interval", "0", stimulus=stim, speed="fast")
    ok = good.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= n, 15)
    got = len({e["seq"] for e in events(good.snapshot())})
    print(attempt, "ok" if ok else "STUCK", got, flush=True)
    if not ok:
        import subprocess
        subprocess.run(["bash","-c",f"for t in /proc/{d.proc.pid}/task/*; do echo $(cat $t/comm) $(cat $t/wchan) $(awk '{{print $14+$15}}' $t/stat); done"])
        time.sleep(3)
        subprocess.run(["bash","-c",f"for t in /proc/{d.proc.pid}/task/*; do echo $(cat $t/comm) $(cat $t/wchan) $(awk '{{print $14+$15}}' $t/stat); done"])
    d.stop(timeout=60); print(d.final(), flush=True)
    good.close(); stall.close(); broker.stop()
    if not ok: break
