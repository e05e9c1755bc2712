"""Long run on the simulated board: a sustained stream of button events at QoS 1 to
mosquitto and an independent subscriber, the daemon's RSS sampled all along. Flat
RSS and no loss. Two minutes here (scripts/test); `scripts/soak SECONDS` runs the
same test for as long as asked and writes its figures (docs/reliability.md)."""
import json
import os
import signal
import threading
import time

from mqtt_env import Collector, Daemon, Mosquitto, expected_exit, stimulus

SECONDS = float(os.environ.get("PYNQ_MQTT_SOAK_SECONDS", "120"))
RATE = int(os.environ.get("PYNQ_MQTT_SOAK_RATE", "1000"))  # events per second
REPORT = os.environ.get("PYNQ_MQTT_SOAK_REPORT")
# strict: the simulated hardware FIFO must not overflow either. The simulated board
# runs in real time on the host's CPU; on a machine loaded by other work its clock
# thread is starved and then catches up (at twice real time), which can overflow the
# 512-event FIFO (counted exactly as hardware drops). scripts/soak is strict (run it
# on an otherwise idle machine); scripts/test on a shared machine is not, but still
# requires zero loss after capture and exact accounting.
STRICT = os.environ.get("PYNQ_MQTT_SOAK_STRICT", "0") == "1"


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


class SeqCounter(Collector):
    """Keeps only the sequence numbers (a long soak has millions of messages)."""

    def __init__(self, *a, **k):
        self.seqs = set()
        self.total = 0
        super().__init__(*a, **k)

    def _on_message(self, client, userdata, msg):
        if msg.topic.startswith("button/"):
            with self.cond:
                self.seqs.add(json.loads(msg.payload)["seq"])
                self.total += 1
                self.cond.notify_all()

    def wait_distinct(self, n, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.seqs) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True


def test_soak_sustained_rate_flat_rss_and_no_loss(binary, tmp_path):
    n = int(SECONDS * RATE)
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "soak.stim"
    stimulus(stim, n, spacing_us=1_000_000 // RATE)
    sub = SeqCounter(broker.port, ("button/#",), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--qos", "1", "--payload", "json",
               "--stats-interval", "30", stimulus=stim)
    samples = []  # (seconds since start, RSS KiB, distinct delivered)
    try:
        pid = d.pid()
        t0 = time.monotonic()
        stop = threading.Event()
        while time.monotonic() - t0 < SECONDS + 1 and d.proc.poll() is None:
            with sub.cond:
                delivered = len(sub.seqs)
            samples.append((round(time.monotonic() - t0, 1), rss_kib(pid), delivered))
            stop.wait(min(10.0, max(1.0, SECONDS / 60)))
        assert d.proc.poll() is None, d.text()[-3000:]
        # on a loaded host the simulated clock lags the wall clock: wait for the end
        # of the stimulus (nothing new for 3 s) before stopping
        deadline = time.monotonic() + max(60.0, SECONDS / 2)
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 3:
            with sub.cond:
                now = len(sub.seqs)
            if now != last:
                last, quiet_since = now, time.monotonic()
            time.sleep(0.5)
        samples.append((round(time.monotonic() - t0, 1), rss_kib(pid), len(sub.seqs)))
        code = d.stop()
        f = d.final()
        assert code == expected_exit(f), d.text()[-3000:]
        assert sub.wait_distinct(f["captured"], 60), f"{len(sub.seqs)} of {f['captured']} delivered"
        # every captured event delivered; nothing lost after capture; every edge of the
        # stimulus either captured or counted as a hardware drop
        hw = f["dropped_hardware_fifo"]
        assert f["dropped_channel"] == 0 and f["dropped_retry_buffer"] == 0 and f["dropped_at_shutdown"] == 0, f
        assert len(sub.seqs) == f["captured"], f
        assert f["captured"] + hw == n, f
        assert f["lost"] == hw, f
        if STRICT:
            assert hw == 0 and f["captured"] == n, f"the simulated FIFO overflowed (host starved?): {f}"
        # flat RSS: after the warm-up (first quarter), growth stays under 10 % + 2 MiB
        warm = [r for t, r, _ in samples if t >= SECONDS / 4]
        base = warm[0]
        peak = max(warm)
        report = {"seconds": SECONDS, "rate_per_s": RATE, "events": n, "captured": f["captured"],
                  "delivered_distinct": len(sub.seqs), "duplicates": sub.total - len(sub.seqs),
                  "lost": f["lost"], "dropped_hardware_fifo": hw, "strict": STRICT, "rss_kib_after_warmup": base, "rss_kib_peak": peak,
                  "rss_kib_end": samples[-1][1], "samples": samples}
        print(json.dumps({k: v for k, v in report.items() if k != "samples"}))
        if REPORT:
            with open(REPORT, "w") as fh:
                json.dump(report, fh, indent=1)
        assert peak <= base * 1.10 + 2048, f"RSS grew from {base} KiB to {peak} KiB: {samples}"
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()
