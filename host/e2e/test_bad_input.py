"""Bad input that the other files do not try: LED command topics that look like
wildcards or neighbours of real ones, and payloads of every kind sent while events
stream (nothing captured is lost, no LED moves, each is in the log: a line of its
own or, past the first few, in a count line); a config file
or password file that is missing or unreadable; a stimulus file that is missing."""
import json
import re
import signal
import subprocess

from mqtt_env import Collector, Daemon, Mosquitto, check_events, stimulus
from mqtt_env import events as all_events
from conftest import publish

def events(messages):
    """The daemon's events (`button/<i>`), not the test's own `button/0/set`."""
    return all_events([m for m in messages if re.fullmatch(r"button/\d+", m[0])])


# (the first LED past the board's, filled in from its shape)
ODD_TOPICS = ["led/{n_leds}/set", "led/all/set", "led/0/set/x", "led//set", "led/0/SET", "led/00/set",
              "led/-1/set", "led/ 0/set", "led/0/set/", "LED/0/set", "led/0", "led/set/0",
              "button/0/set", "status/set", "led/\u00e9/set"]
# (issue 15 made `true`, JSON states and the empty payload valid, and the limit 64 bytes)
PAYLOADS = [b" ", b"\x00", b"\xff\xfe", b"on\x00", b"1" * 65, b"x" * 100_000, "\u00f6n".encode(),
            b"2", b"-1", b"yes", b'{"state":1}', b"on off", b"+", b"#"]


def test_odd_topics_and_payloads_while_streaming_lose_nothing_and_move_no_led(binary, sim_shape, tmp_path):
    broker = Mosquitto(tmp_path).start()
    stim = tmp_path / "s.stim"
    stimulus(stim, 6000, spacing_us=1000, start_us=500_000)
    sub = Collector(broker.port, ("button/#", "led/#", "stats"), qos=1)
    d = Daemon(binary, f"mqtt://127.0.0.1:{broker.port}", tmp_path, "--qos", "1", "--payload", "json",
               "--stats-interval", "1", stimulus=stim)
    try:
        assert sub.wait_for(lambda m: sum(t.startswith("led/") for t, _, _ in m) >= 4, 20)
        assert sub.wait_for(lambda m: len(events(m)) >= 100, 20)
        mark = len(sub.snapshot())
        # topics the daemon subscribes to (led/+/set, led/set) with payloads it refuses
        for payload in PAYLOADS:
            publish(broker.port, "led/0/set", payload)
            publish(broker.port, "led/set", payload)
        # topics that are not LED commands at all (the broker never sends most of them)
        for topic in ODD_TOPICS:
            publish(broker.port, topic.replace("{n_leds}", str(sim_shape[1])), "on")
        assert d.proc.poll() is None, d.text()[-2000:]
        # the daemon still takes a good command afterwards
        publish(broker.port, "led/3/set", "on")
        assert sub.wait_for(lambda m: any(t == "led/3" and p == b"1" for t, p, _ in m[mark:]), 15)
        # readbacks (led/<i> with 0/1) of any other LED; the test's own publishes to
        # command-like topics are in the snapshot too, and are not readbacks
        moved = [(t, p) for t, p, _ in sub.snapshot()[mark:]
                 if re.fullmatch(r"led/\d+", t) and t != "led/3" and p in (b"0", b"1")]
        assert moved == [], f"a bad command moved an LED: {moved}"
        # every payload on the two command topics, and the odd topics that match the
        # daemon's subscription led/+/set (+ matches an empty level too)
        rejected = 2 * len(PAYLOADS) + sum(bool(re.fullmatch(r"led/[^/]*/set", t)) for t in ODD_TOPICS)
        def settled(m):
            s = [json.loads(p) for t, p, _ in m if t == "stats"]
            return s and s[-1]["led_commands"]["rejected"] == rejected
        assert sub.wait_for(settled, 15), [p for t, p, _ in sub.snapshot() if t == "stats"][-1:]
        assert d.stop() == 0, d.text()[-3000:]
        f = d.final()
        assert f["lost"] == 0 and f["captured"] == 6000, f
        assert sub.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= 6000, 30)
        check_events(events(sub.snapshot()), 6000, allow_duplicates=True)
        # every refusal in the log: the first few a line each, the rest in count
        # lines (warnings are rate-limited per cause); each line short (a 100 kB
        # payload is cut in the log)
        lines = [l for l in d.text().splitlines() if "LED command rejected" in l]
        told = sum(int(n) for n in re.findall(r"LED command rejected: (\d+) more like this", d.text()))
        shown = [l for l in lines if "more like this" not in l]
        assert len(shown) + told == rejected, d.text()[-3000:]
        assert max(len(l) for l in lines) < 400, max(lines, key=len)
    finally:
        sub.close()
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        broker.stop()


def one_line_failure(binary, *args):
    r = subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=60)
    err = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0, r.stdout + r.stderr
    assert len(err) == 1, r.stderr
    return err[0]


def test_missing_and_unreadable_files_are_one_line_each(binary, tmp_path):
    base = ["run", "--board", "sim", "--broker", "mqtt://127.0.0.1:1"]
    line = one_line_failure(binary, *base, "--config", tmp_path / "nope.toml")
    assert "nope.toml" in line and "config" in line, line
    # a directory where a file should be: unreadable whatever the user's rights
    line = one_line_failure(binary, *base, "--config", tmp_path)
    assert str(tmp_path) in line, line
    line = one_line_failure(binary, *base, "--username", "u", "--password-file", tmp_path / "nope.pw")
    assert "nope.pw" in line, line
    line = one_line_failure(binary, *base, "--stimulus", tmp_path / "nope.stim")
    assert "nope.stim" in line, line
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b'prefix = "\xff\xfe"\n')
    line = one_line_failure(binary, *base, "--config", bad)
    assert "bad.toml" in line, line
