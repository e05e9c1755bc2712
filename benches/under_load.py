#!/usr/bin/env python3
"""What rate and burst the event drain sustains while CPU-bound loops at normal
priority keep cores busy, and with which settings.

The daemon (`pynq-mqtt run --board sim`, the Verilated RTL in real time) replays a
stimulus onto the pins: bursts of B edges one microsecond apart with a gap after each,
or a steady rate. Beside it run L copies of `while :; do :; done`. Each case reports
what the daemon counted: events lost at the hardware FIFO (the drain fell behind), at
the driver's channel (the publisher fell behind), and in all. A stock mosquitto on a
free loopback port takes the PUBLISHes; nothing subscribes, so no subscriber's speed is
measured. Usage:

    benches/under_load.py [--binary target/release/pynq-mqtt] [--loops 1,2] [--reps 3]
                          [--json benches/results/under_load.json] [--smoke]

`--smoke` runs one case once (the script works; its figures mean nothing). The table
goes to stdout and, as Markdown, next to the JSON (under_load.md).

Rates and timings depend on the machine: the script prints the machine's load and
core count with the figures."""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "host/e2e"))
from mqtt_env import Daemon, Mosquitto, stimulus  # noqa: E402

FIFO_DEPTH = 512
# (name, daemon arguments)
SETTINGS = [
    ("default (1 irq/event, rt 10)", []),
    ("rt 0 (normal priority)", ["--rt-priority", "0"]),
    ("coalesce 256/1000us, rt 10", ["--coalesce-count", "256", "--coalesce-us", "1000"]),
]
# (name, burst, gap_us or spacing_us, events): bursts of `burst` edges then a gap, or
# (burst 1) one edge every `spacing_us`
CASES = [
    ("bursts of 128 every 3 ms (42.7k/s)", 128, 3000, 25_600),
    ("bursts of 512 every 10 ms (51.2k/s)", FIFO_DEPTH, 10_000, 25_600),
    ("steady 50k/s", 1, 20, 50_000),
    ("steady 100k/s", 1, 10, 100_000),
    ("bursts of 512 every 4 ms (128k/s)", FIFO_DEPTH, 4_000, 102_400),
    ("steady 150k/s", 1, 7, 150_000),
    ("steady 200k/s", 1, 5, 200_000),
]


def run_case(binary, loops, args, burst, gap, n):
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="under-load-"))
    broker = Mosquitto(tmp, config="stock").start()
    stim = tmp / "s.stim"
    if burst > 1:
        secs = stimulus(stim, n, burst=burst, gap_us=gap, start_us=300_000)
    else:
        secs = stimulus(stim, n, spacing_us=gap, start_us=300_000)
    env = {k: v for k, v in os.environ.items() if k != "PYNQ_MQTT_RT_PRIORITY"}
    hogs = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(loops)]
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp, "--stats-interval", "0", *args,
               stimulus=stim, env=env)
    try:
        time.sleep(0.3 + secs + 1.5)
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        d.stop(timeout=60)
        broker.stop()
    f = d.final()
    rt = "runs real-time" in d.text()
    done = f["captured"] + f["dropped_hardware_fifo"] == n
    return {"fifo": f["dropped_hardware_fifo"], "channel": f["dropped_channel"], "lost": f["lost"],
            "published": f["published"], "complete": done, "realtime": rt}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default=str(ROOT / "target/release/pynq-mqtt"))
    ap.add_argument("--loops", default="1,2", help="busy loops beside the daemon, comma-separated")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", default=str(ROOT / "benches/results/under_load.json"))
    ap.add_argument("--smoke", action="store_true", help="one case, once")
    a = ap.parse_args()
    loads = [int(x) for x in a.loops.split(",")]
    settings, cases = SETTINGS, CASES
    if a.smoke:
        loads, settings, cases, a.reps = [1], SETTINGS[:1], [("smoke: bursts of 64", 64, 2000, 1024)], 1
    machine = {"cores": os.cpu_count(), "loadavg_before": os.getloadavg()[0],
               "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    print(f"# under load: {machine}", flush=True)
    table = ["| busy loops | settings | stimulus | events | runs losing nothing | lost at the FIFO "
             "| lost at the channel |", "|---|---|---|---|---|---|---|"]
    print("\n".join(table), flush=True)
    rows = []
    for loops in loads:
        for sname, args in settings:
            for cname, burst, gap, n in cases:
                reps = [run_case(a.binary, loops, args, burst, gap, n) for _ in range(a.reps)]
                row = {"loops": loops, "settings": sname, "case": cname, "events": n, "reps": reps}
                rows.append(row)
                fifo = [r["fifo"] for r in reps]
                chan = [r["channel"] for r in reps]
                clean = sum(1 for r in reps if r["lost"] == 0 and r["fifo"] == 0 and r["complete"])
                line = (f"| {loops} | {sname} | {cname} | {n} | {clean} of {len(reps)} | "
                        f"{', '.join(map(str, fifo))} | {', '.join(map(str, chan))} |"
                        + ("" if all(r["realtime"] for r in reps) or "rt 0" in sname else " refused real-time |"))
                table.append(line)
                print(line, flush=True)
    pathlib.Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(a.json).write_text(json.dumps({"machine": machine, "rows": rows}, indent=1) + "\n")
    if not a.smoke:
        md = pathlib.Path(a.json).with_suffix(".md")
        md.write_text(f"Taken {machine['when']} on {machine['cores']} cores, load average "
                      f"{machine['loadavg_before']:.2f} before.\n\n" + "\n".join(table) + "\n")
    if a.smoke and any(r["lost"] or r["fifo"] for row in rows for r in row["reps"]):
        print("smoke: the one case lost events", file=sys.stderr)
        return 1
    if any(not r["complete"] for row in rows for r in row["reps"]):
        print("some run did not capture its whole stimulus (see the JSON)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
