"""Batched publishing: every event is its own PUBLISH on `button/<i>`, in order, but
many go out per write system call. Counted twice: by the daemon (`writes=` in its
last line) and, where strace is installed, by strace -c over the whole process."""
import shutil

import pytest

from mqtt_env import Collector, Daemon, Mosquitto, Rumqttd, assert_every_edge_in_order, expected_exit, stimulus

N = 100_000


def syscalls(strace_out):
    """{syscall: calls} from strace -c's table."""
    calls = {}
    for line in strace_out.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[-1].isidentifier() and parts[3].isdigit():
            calls[parts[-1]] = int(parts[3])
    return calls


@pytest.mark.parametrize("kind", ["mosquitto", "rumqttd"])
def test_100k_events_many_publishes_per_write(binary, tmp_path, kind):
    b = (Mosquitto(tmp_path) if kind == "mosquitto" else Rumqttd(binary, tmp_path)).start()
    stim = tmp_path / "bursts.stim"
    # bursts of 128 edges, one per microsecond, every 3 ms: 2.4 s simulated
    stimulus(stim, N, burst=128, gap_us=3000, start_us=500_000)
    sub = Collector(b.port, ("button/#",), qos=0)
    trace = tmp_path / "strace.txt" if kind == "mosquitto" and shutil.which("strace") else None
    d = Daemon(binary, f"mqtt://127.0.0.1:{b.port}", tmp_path, "--stats-interval", "0", stimulus=stim,
               strace=trace)
    try:
        # (on a loaded machine the simulated board may drop a few in its FIFO; they
        # are counted and excluded: the bridge must deliver every captured event)
        got = sub.wait_for(lambda m: len(m) >= N, 60)
        if got is None:
            got = sub.snapshot()
    finally:
        code = d.stop(timeout=120)
        sub.close()
        b.stop()
    f = d.final()
    assert code == expected_exit(f), d.text()[-2000:]
    assert f["captured"] + f["dropped_hardware_fifo"] == N and f["published"] == f["captured"], f
    assert f["dropped_hardware_fifo"] < N // 100, f
    assert len(got) == f["captured"], f"{len(got)} delivered; daemon: {f}"
    if f["dropped_hardware_fifo"] == 0:
        assert_every_edge_in_order(got, N)
    assert f["writes"] <= N // 20, f"{f['writes']} writes for {N} events"
    if trace:
        calls = syscalls(trace)
        writes = sum(calls.get(s, 0) for s in ("write", "writev", "sendto", "sendmsg", "pwrite64"))
        assert 0 < writes <= N // 20, f"strace -c: {calls}"
