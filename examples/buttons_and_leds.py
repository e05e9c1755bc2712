# %% [markdown]
# # Buttons and LEDs over MQTT, through the pynq-mqtt daemon
#
# The seed notebook read the buttons from Python in a loop, published what changed,
# toggled LEDs from an MQTT callback, and timed 10,000 publishes. This notebook does the
# same against the `pynq-mqtt` daemon: the FPGA timestamps every button edge and the
# daemon publishes it on `button/<i>`, so no press is missed however short; LEDs are set
# by publishing to `led/<i>/set`, and the daemon answers on `led/<i>` with the state read
# back from the hardware. The timing cell counts what a second, independent subscriber
# actually received, and the publisher disconnects cleanly, so nothing is lost at exit.
#
# Run it cell by cell in Jupyter on the board (needs paho-mqtt 2: if the first cell says
# so, run `%pip install "paho-mqtt>=2"` in a cell), or as a script from anywhere that
# reaches the broker:
#
#     python3 examples/buttons_and_leds.py --broker HOST [--port 1883] [--prefix P]
#
# The daemon must be running (`sudo systemctl status pynq-mqtt`); if a cell says it is
# not, run `pynq-mqtt doctor` on the board. A broker that cannot be reached (wrong host
# or port) is one line naming it.
#
# Topics as the daemon was told: `--prefix`, `--button-topic`, `--input-names` and
# `--led-names` take the daemon's settings of the same names (and its environment:
# `PYNQ_MQTT_PREFIX`, `PYNQ_MQTT_BUTTON_TOPIC`, `PYNQ_MQTT_INPUT_NAMES`,
# `PYNQ_MQTT_LED_NAMES`), e.g. for a daemon run with `--prefix pynq/lab1/
# --input-names btn0,btn1,btn2,btn3,sw0,sw1 --led-names ld0,ld1,ld2,ld3`:
#
#     python3 examples/buttons_and_leds.py --broker pynq --prefix pynq/lab1/ \
#         --input-names btn0,btn1,btn2,btn3,sw0,sw1 --led-names ld0,ld1,ld2,ld3
#
# Without a board, against the simulator (the Verilated RTL, shaped like the board, with
# its own broker): in one shell `pynq-mqtt sim --port 1884` (or `scripts/demo --port
# 1884`), whose digit keys 0-3 press BTN0-3; in another
#
#     python3 examples/buttons_and_leds.py --broker 127.0.0.1 --port 1884
#
# Buttons: 0-3 are BTN0-BTN3, 4-5 the switches SW0-SW1. LEDs: 0-3 are LD0-LD3, 4-6 the
# blue, green and red of LD4, 7-9 those of LD5.

# %%
# Settings: where the broker is. In Jupyter, edit the defaults here.
import argparse
import json
import os
import queue
import re
import sys
import threading
import time
import uuid

import paho.mqtt
import paho.mqtt.client as mqtt

if int(paho.mqtt.__version__.split(".")[0]) < 2:
    raise SystemExit(f"paho-mqtt {paho.mqtt.__version__} is too old: pip install 'paho-mqtt>=2'")


def names(text):
    return [n.strip() for n in text.split(",")] if text.strip() else []


def settings():
    env = os.environ.get
    p = argparse.ArgumentParser(description="The seed notebook, against the pynq-mqtt daemon")
    p.add_argument("--broker", default=env("PYNQ_MQTT_EXAMPLE_BROKER", "localhost"))
    p.add_argument("--port", type=int, default=1883)
    p.add_argument("--prefix", default=env("PYNQ_MQTT_PREFIX", ""),
                   help="the daemon's topic prefix (default none)")
    p.add_argument("--button-topic", default=env("PYNQ_MQTT_BUTTON_TOPIC", "button/{name}"),
                   help="the daemon's button topic under the prefix, with {name} or {i}")
    p.add_argument("--input-names", type=names, default=names(env("PYNQ_MQTT_INPUT_NAMES", "")),
                   help="the daemon's input names, comma-separated (default: the index)")
    p.add_argument("--led-names", type=names, default=names(env("PYNQ_MQTT_LED_NAMES", "")),
                   help="the daemon's LED names in led/<name>, comma-separated (default: the index)")
    p.add_argument("--daemon-timeout", type=float, default=15.0,
                   help="seconds to wait for the daemon's retained `online`")
    p.add_argument("--button-timeout", type=float, default=None,
                   help="stop waiting for button 3 after this many seconds (default: wait)")
    p.add_argument("--count", type=int, default=10_000, help="messages in the timing cell")
    p.add_argument("--qos", type=int, default=0, choices=(0, 1, 2), help="QoS of the timing cell")
    # in Jupyter, sys.argv holds the kernel's own arguments
    argv = [] if "ipykernel" in sys.modules else sys.argv[1:]
    s = p.parse_args(argv)
    if s.prefix and not s.prefix.endswith("/"):
        s.prefix += "/"  # as the daemon does
    if "{name}" not in s.button_topic and "{i}" not in s.button_topic:
        p.error(f"--button-topic {s.button_topic!r}: needs {{name}} or {{i}}, as the daemon's")
    return s


S = settings()


class Topics:
    """The daemon's topics, from the same settings: input and LED numbers <-> topics."""

    def __init__(self, s):
        self.prefix = s.prefix
        self.inputs, self.leds = s.input_names, s.led_names
        # the button template as a pattern: {name} and {i} become groups
        pattern = re.escape(s.prefix + s.button_topic)
        pattern = pattern.replace(re.escape("{name}"), "(?P<name>[^/]+)", 1)
        pattern = pattern.replace(re.escape("{i}"), "(?P<i>[0-9]+)", 1)
        self.button_re = re.compile(pattern + "$")
        # a level holding {name} or {i} (even within other text) is any level
        self.button_filter = "/".join("+" if "{name}" in level or "{i}" in level else level
                                      for level in (s.prefix + s.button_topic).split("/"))

    @staticmethod
    def _index(name, names):
        if name in names:
            return names.index(name)
        return int(name) if name.isdigit() else None

    def input_name(self, i):
        return self.inputs[i] if i < len(self.inputs) else str(i)

    def led_name(self, i):
        return self.leds[i] if i < len(self.leds) else str(i)

    def button(self, topic):
        """The input a button topic is about, or None."""
        m = self.button_re.match(topic)
        if not m:
            return None
        if m.groupdict().get("i") is not None:
            return int(m["i"])
        return self._index(m["name"], self.inputs)

    def led(self, topic):
        """The LED a `led/<name>` state topic is about, or None."""
        rest = topic[len(self.prefix):] if topic.startswith(self.prefix) else None
        if rest is None or not rest.startswith("led/") or rest.count("/") != 1:
            return None
        return self._index(rest[4:], self.leds)

    def led_set(self, i):
        return f"{self.prefix}led/{self.led_name(i)}/set"


T = Topics(S)


def connect(role):
    """A client with its own network thread, returned once the broker has accepted it
    (the seed published before the CONNACK arrived and closed with it unread)."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                         client_id=f"pynq-mqtt-example-{role}-{uuid.uuid4().hex[:8]}")
    accepted = threading.Event()
    result = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        accepted.set()

    client.on_connect = on_connect
    try:
        client.connect(S.broker, S.port)
    except (OSError, ValueError) as e:  # refused, unknown host, unreachable, timed out
        raise SystemExit(f"cannot reach the MQTT broker at {S.broker}:{S.port}: "
                         f"{getattr(e, 'strerror', None) or e} (check --broker and --port)") from None
    client.loop_start()
    if not accepted.wait(10) or result["rc"].is_failure:
        client.loop_stop()
        raise SystemExit(f"the broker {S.broker}:{S.port} did not accept us ({result.get('rc')})")
    return client


def subscribe(client, filters):
    done = threading.Event()
    client.on_subscribe = lambda *args: done.set()
    client.subscribe(filters)
    if not done.wait(10):
        raise SystemExit(f"no SUBACK for {filters}")


client = connect("main")
print(f"connected to {S.broker}:{S.port}")

# %% [markdown]
# ## Subscribe: button edges, LED read-backs, the daemon's status
#
# Every message lands in a queue or a table from the network thread, so nothing is
# missed while another cell runs.

# %%
events = queue.Queue()  # (input, level) of every button edge, in order
leds = {}               # LED index -> "1"/"0", as read back from the hardware
changed = threading.Condition()
daemon = {"status": None}


def level(text):
    """"1"/"0" of a state payload: the seed's 1/0, --state-format onoff's ON/OFF, or
    --payload json's {"state": ..}."""
    if text.startswith("{"):
        text = str(json.loads(text)["state"])
    return {"ON": "1", "OFF": "0"}.get(text.upper(), text)


def on_message(client, userdata, msg):
    text = msg.payload.decode(errors="replace")
    i = T.button(msg.topic)
    if i is not None:
        events.put((i, level(text)))
        return
    with changed:
        i = T.led(msg.topic)
        if i is not None:
            leds[i] = level(text)
        elif msg.topic == S.prefix + "status":
            daemon["status"] = text
        changed.notify_all()


def wait_until(predicate, timeout):
    with changed:
        return changed.wait_for(predicate, timeout)


client.on_message = on_message
subscribe(client, [(T.button_filter, 1), (S.prefix + "led/+", 1), (S.prefix + "status", 1)])
print(f"subscribed to {T.button_filter}, {S.prefix}led/+ and {S.prefix}status")

if not wait_until(lambda: daemon["status"] == "online" and leds, S.daemon_timeout):
    raise SystemExit(f"the daemon is not online (status: {daemon['status']}): on the board, "
                     "`sudo systemctl status pynq-mqtt`, then `pynq-mqtt doctor`")
time.sleep(0.2)  # the retained led/<i> states arrive together
print(f"daemon: online, {len(leds)} LEDs")

# %% [markdown]
# ## LEDs: ask the daemon, see what the hardware did
#
# `led/<i>/set` takes `1`/`0`, `on`/`off` or `toggle`; the answer on `led/<i>` is read
# back from the LED register, so it shows what the LED really does.

# %%
def set_led(i, command):
    """Sends the command for LED i and returns its state read back from the hardware."""
    with changed:
        before = leds.get(i)
    want = {"on": "1", "1": "1", "off": "0", "0": "0"}.get(command.lower())
    if want is None:  # toggle
        want = "0" if before == "1" else "1"
    client.publish(T.led_set(i), command, qos=1).wait_for_publish(5)
    if not wait_until(lambda: leds.get(i) == want, 5):
        raise SystemExit(f"LED {T.led_name(i)}: asked for {command}, the hardware still reads {leds.get(i)}")
    print(f"LED {T.led_name(i)}: {'on' if want == '1' else 'off'}")
    return want


for i in range(min(4, len(leds))):
    set_led(i, "on")
    time.sleep(0.1)
for i in range(min(4, len(leds))):
    set_led(i, "off")

# %% [markdown]
# ## Buttons: every edge, from the hardware FIFO
#
# Press buttons 0-2: each press toggles the LED above it (the seed toggled LEDs from a
# button callback). Press button 3 to go on. Switch edges show up as inputs 4 and 5.

# %%
deadline = None if S.button_timeout is None else time.monotonic() + S.button_timeout
print("press buttons 0-2; button 3 ends this cell")
while True:
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    try:
        i, state = events.get(timeout=left)
    except queue.Empty:
        print("no press of button 3 in time; going on")
        break
    print(f"button {T.input_name(i)}: {'pressed' if state == '1' else 'released'}")
    if state == "1" and i == 3:
        print(f"button {T.input_name(3)} pressed: done with buttons")
        break
    if state == "1" and i in leds and i < 3:
        set_led(i, "toggle")

# %% [markdown]
# ## The seed's timing cell, measured at the receiving end
#
# The seed timed how fast `publish()` returned: that is the speed of appending to a
# queue, not of delivery, and closing right after it lost messages. Here a separate
# connection subscribes and counts; the publisher waits until its last message is on
# the wire and then disconnects cleanly (DISCONNECT follows the last PUBLISH).

# %%
topic = f"{S.prefix}example/bench/{uuid.uuid4().hex[:8]}"
received = {"n": 0, "last": 0.0}
all_in = threading.Event()


def count(client, userdata, msg):
    received["n"] += 1
    received["last"] = time.perf_counter()
    if received["n"] >= S.count:
        all_in.set()


counter = connect("counter")
counter.on_message = count
subscribe(counter, [(topic, S.qos)])

publisher = connect("publisher")
t0 = time.perf_counter()
infos = [publisher.publish(topic, b"bar", qos=S.qos) for _ in range(S.count)]
t_returned = time.perf_counter() - t0
infos[-1].wait_for_publish(60)  # in order: every earlier message is out too
t_sent = time.perf_counter() - t0
publisher.disconnect()
publisher.loop_stop()

# QoS 0 has no acknowledgement: wait until all arrived or nothing came for a second
while not all_in.wait(1.0):
    if time.perf_counter() - max(received["last"], t0 + t_sent) > 1.0:
        break
counter.disconnect()
counter.loop_stop()
delivered = received["n"]
t_last = (received["last"] - t0) if delivered else float("nan")

print(f"publish timing: {S.count} messages, QoS {S.qos}, {S.broker}:{S.port}")
print(f"  publish() calls returned after {t_returned:.3f} s ({S.count / t_returned:,.0f}/s): all the seed measured")
print(f"  all written to the broker after {t_sent:.3f} s; clean disconnect")
print(f"  delivered {delivered} of {S.count} to an independent subscriber, "
      f"the last after {t_last:.3f} s ({delivered / t_last:,.0f} msg/s)")
if delivered < S.count:
    print("  (QoS 0 lets a broker drop messages for a subscriber that falls behind, e.g. past "
          "mosquitto's max_queued_messages; --qos 1 delivers every one)")

# %%
# Tidy up: LEDs off, a clean disconnect.
for i in range(min(4, len(leds))):
    if leds.get(i) == "1":
        set_led(i, "off")
client.disconnect()
client.loop_stop()
print("done")
