"""Issue 15 point 5: failover on a broker cluster. A fleet of simulated boards
publishes at QoS 1 to one node of a real 3-node RabbitMQ cluster; that node is
killed (SIGKILL, as a crash); each daemon moves to the next broker of its list with
its retry buffer, and a persistent QoS 1 subscriber on another node gets every
sequence number of every board.

What RabbitMQ guarantees here, and so what is asserted (docs/fleet.md, "What the
broker guarantees"): the MQTT plugin keeps a persistent session's subscription in a
quorum queue (`mqtt.durable_queue_type = quorum`), replicated on the three nodes and
available while two are up; a QoS 1 PUBLISH is acknowledged once the queues it was
routed to have it. So no acknowledged event may be lost with one node down, and the
daemon resends what was not acknowledged: every sequence number arrives, duplicates
allowed (at least once)."""
import datetime
import json
import os
import re
import signal
import time

from mqtt_env import Collector, Daemon, Mosquitto, events, free_port, stimulus
from rabbitmq import Cluster

BOARDS = 5
# per board: 600 edges 15 ms apart, 9 s of simulated time; the node dies 3 s in
EVENTS = 600
SPACING_US = 15_000
KILL_AFTER_S = 3.0


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("PYNQ_MQTT_")}


def stamp(line):
    """The UTC time of a daemon log line."""
    m = re.match(r"\s*(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?)Z", line)
    return datetime.datetime.fromisoformat(m.group(1)).replace(tzinfo=datetime.timezone.utc) if m else None


def board_events(messages, k):
    return events(messages, f"fleet/{k}/")


def test_a_fleet_fails_over_when_its_node_dies_and_every_event_arrives(binary, tmp_path):
    t_start = time.monotonic()
    cluster = Cluster(tmp_path).start()
    a, b, c = cluster.nodes
    daemons, sub = [], None
    try:
        assert cluster.listening_beyond_loopback() == []
        # the subscriber's session lives on node b (its quorum queue's leader there)
        sub = Collector(b.mqtt, ("fleet/+/button/#",), qos=1, client_id="fleet-watch", persistent=True)
        # the strongest guarantee the plugin offers: the persistent session's queue is
        # a quorum queue, replicated on the three nodes
        queues = b.ctl("list_queues", "name", "type", "members", "--formatter", "json").stdout
        session = [q for q in json.loads(queues) if q["name"] == "mqtt-subscription-fleet-watchqos1"]
        assert session and session[0]["type"] == "quorum", queues
        assert sorted(session[0]["members"]) == sorted(n.name for n in cluster.nodes), session
        stim = tmp_path / "fleet.stim"
        stimulus(stim, EVENTS, spacing_us=SPACING_US, start_us=1_500_000)
        for k in range(BOARDS):
            brokers = [a, c, b] if k % 2 else [a, b, c]
            args = []
            for n in brokers:
                args += ["--broker", f"mqtt://127.0.0.1:{n.mqtt}"]
            daemons.append(Daemon(
                binary, f"mqtt://127.0.0.1:{brokers[0].mqtt}", tmp_path, *args[2:],
                "--client-id", f"pynq-mqtt-fleet{k}", "--prefix", f"fleet/{k}/", "--qos", "1",
                "--payload", "json", "--stats-interval", "0", "--reconnect-min", "0.1",
                "--reconnect-max", "2", "--shutdown-timeout", "60",
                stimulus=stim, env=clean_env(), name=f"board{k}"))
        for k, d in enumerate(daemons):
            assert d.wait_log(f"connected to broker broker=mqtt://127.0.0.1:{a.mqtt}", 60), f"board {k}: {d.text()[-2000:]}"
        # events flow from every board through node a before it dies
        assert sub.wait_for(lambda m: all(board_events(m, k) for k in range(BOARDS)), 30), \
            "no events from some board before the kill"
        time.sleep(KILL_AFTER_S - 1.0)
        before = {k: len(board_events(sub.snapshot(), k)) for k in range(BOARDS)}
        killed_at = datetime.datetime.now(datetime.timezone.utc)
        t_kill = time.monotonic()
        a.kill()
        for k, d in enumerate(daemons):
            assert d.wait_log("moving to the next broker", 60), f"board {k}: {d.text()[-3000:]}"
        # the stream ends, then every board's every event must arrive
        want = lambda m: all(len({e["seq"] for e in board_events(m, k)}) >= EVENTS for k in range(BOARDS))
        got = sub.wait_for(want, 120)
        delivered_s = time.monotonic() - t_kill
        finals = []
        for k, d in enumerate(daemons):
            code = d.stop(signal.SIGTERM, timeout=90)
            f = d.final()
            finals.append(f)
            assert code == 0, f"board {k} exit {code}: {d.text()[-3000:]}"
            assert f["captured"] == EVENTS and f["lost"] == 0 and f["published"] == EVENTS, (k, f)
        msgs = sub.snapshot()
        figures = {"boards": BOARDS, "events_per_board": EVENTS, "sent": BOARDS * EVENTS,
                   "received": 0, "distinct": 0, "duplicates": 0, "failover_s": [],
                   "received_before_kill": sum(before.values())}
        for k, d in enumerate(daemons):
            evs = board_events(msgs, k)
            seqs = [e["seq"] for e in evs]
            missing = EVENTS - len(set(seqs))
            assert missing == 0 and got, f"board {k}: {missing} of {EVENTS} sequence numbers never arrived"
            # per board, first deliveries come in sequence order
            firsts, seen = [], set()
            for s in seqs:
                if s not in seen:
                    seen.add(s)
                    firsts.append(s)
            assert firsts == sorted(firsts), f"board {k}: out of order"
            figures["received"] += len(seqs)
            figures["distinct"] += len(set(seqs))
            figures["duplicates"] += len(seqs) - len(set(seqs))
            # one line per move, from node a to the next of this board's list
            lines = d.text().splitlines()
            moves = [l for l in lines if "moving to the next broker" in l]
            assert moves and f"from=mqtt://127.0.0.1:{a.mqtt}" in moves[0], moves
            # time to fail over: the kill to the first connection after it
            back = [stamp(l) for l in lines if "connected to broker" in l and stamp(l) and stamp(l) > killed_at]
            assert back, f"board {k} never connected again: {d.text()[-3000:]}"
            figures["failover_s"].append(round((back[0] - killed_at).total_seconds(), 3))
            after = [l for l in lines if "connected to broker" in l and stamp(l) and stamp(l) > killed_at]
            assert f"broker=mqtt://127.0.0.1:{a.mqtt}" not in after[0], after
            # the daemon's own persistent session survived on the new node (a quorum queue)
            assert "session_present=true" in after[0], after
            resent = [int(n) for n in re.findall(r"sending unacknowledged events again events=(\d+)", d.text())]
            figures["resent"] = figures.get("resent", 0) + sum(resent)
        figures["all_delivered_after_kill_s"] = round(delivered_s, 2)
        figures["cluster_start_s"] = round(cluster.start_s, 1)
        figures["test_s"] = round(time.monotonic() - t_start, 1)
        print("failover figures:", json.dumps(figures))
        (tmp_path / "figures.json").write_text(json.dumps(figures))
    finally:
        for d in daemons:
            if d.proc.poll() is None:
                d.stop(signal.SIGKILL)
        if sub:
            sub.close()
        cluster.stop()


def test_a_dead_broker_and_one_that_refuses_the_login_are_passed_over(binary, tmp_path):
    """Nothing listens on the first broker, the second refuses anonymous clients
    (CONNACK 5, which with one broker ends the run), the third accepts: the daemon
    moves twice, one line each, and its events arrive on the third. With only the
    refusing broker, the run ends with the refusal, as before."""
    dead = free_port()
    strict = Mosquitto(tmp_path, listener_opts="allow_anonymous false\n").start()
    good = Mosquitto(tmp_path).start()
    sub = Collector(good.port, ("button/#",), qos=1)
    stim = tmp_path / "few.stim"
    stimulus(stim, 8, spacing_us=1000, start_us=500_000)
    urls = [f"mqtt://127.0.0.1:{p}" for p in (dead, strict.port, good.port)]
    d = Daemon(binary, urls[0], tmp_path, "--broker", urls[1], "--broker", urls[2], "--qos", "1",
               "--payload", "json", "--stats-interval", "0", stimulus=stim, env=clean_env())
    try:
        got = sub.wait_for(lambda m: len({e["seq"] for e in events(m)}) >= 8, 30)
        assert got, d.text()[-3000:]
        assert d.stop() == 0, d.text()[-3000:]
        moves = [l for l in d.text().splitlines() if "moving to the next broker" in l]
        assert len(moves) == 2, moves
        assert f"from={urls[0]} to={urls[1]}" in moves[0] and f"from={urls[1]} to={urls[2]}" in moves[1], moves
        assert "not authorized" in d.text(), d.text()[-3000:]
        alone = Daemon(binary, urls[1], tmp_path, "--stats-interval", "0", env=clean_env(), name="alone")
        assert alone.wait(30) == 1, alone.text()[-3000:]
        assert "not authorized" in alone.text() and "moving" not in alone.text(), alone.text()[-3000:]
    finally:
        if d.proc.poll() is None:
            d.stop(signal.SIGKILL)
        sub.close()
        strict.stop()
        good.stop()
