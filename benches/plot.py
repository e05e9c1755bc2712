"""Delivered rate against batch size (packets per write) from results.json's sweep."""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

src, dst = sys.argv[1], sys.argv[2]
r = json.load(open(src))
if "sweep" not in r:
    sys.exit(f"plot.py: {src} has no sweep (a --smoke or --no-sweep run): nothing to plot")
sw = r["sweep"]
fig, ax = plt.subplots(figsize=(7, 4.5))
for place, color in (("spread", "tab:blue"), ("shared", "tab:red")):
    if place not in sw:
        continue
    d = sw[place]
    ax.plot(sw["batches"], d["raw"], "o-", color=color, label=f"raw writes, {place}")
    ax.axhline(d["pynq_mqtt"], color=color, ls="--", label=f"pynq-mqtt publisher, {place}")
    ax.axhline(d["rumqttc"], color=color, ls=":", label=f"rumqttc (1 per write), {place}")
ax.set_xscale("log")
ax.set_xlabel("PUBLISH packets per write")
ax.set_ylabel("delivered msg/s at an independent subscriber")
ax.set_title(f"mosquitto on loopback, N = {sw['n']}, medians of {r['reps']}, load {r['load_before']}")
ax.legend(fontsize=7)
fig.tight_layout()
fig.savefig(dst, dpi=110)
