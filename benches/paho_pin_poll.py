"""The seed notebook's button loop as a peer of `pin-latency`: paho-mqtt, the pins read
in a loop, one publish per change seen, `client.loop(timeout=.001)` between reads, until
button 3 is pressed. The pins are the simulated board's, read through the bench's pin
socket (one request, one line back: the pin levels as a bit mask and the number of
edges driven on input 0 so far), where the notebook read PYNQ's `Button(i).read()`.

Unlike the seed, the payload carries the edge's number (`{"state":1,"seq":k}`) so that
the bench's subscriber can match each message to the edge it reports; edges that the
loop never saw (two within one of its turns) are the bench's lost events."""

import argparse
import json
import socket
import sys
import warnings

import paho.mqtt.client as mqtt

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--pins", required=True, help="the bench's pin socket (AF_UNIX)")
a = ap.parse_args()

warnings.simplefilter("ignore", DeprecationWarning)
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1)
except AttributeError:  # paho-mqtt 1.x
    client = mqtt.Client()
connected = []
client.on_connect = lambda c, userdata, flags, rc: connected.append(rc)
client.connect("127.0.0.1", a.port)
while not connected:
    client.loop(timeout=0.01)

pins = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
pins.connect(a.pins)
rx = b""


def read_pins():
    """(levels bit mask, edges driven on input 0 so far)"""
    global rx
    pins.sendall(b"r")
    while b"\n" not in rx:
        chunk = pins.recv(64)
        if not chunk:
            raise SystemExit("the pin socket closed")
        rx += chunk
    line, rx = rx.split(b"\n", 1)
    levels, edges = line.split()
    return int(levels), int(edges)


print("ready")
sys.stdout.flush()

# the seed's cell: read until button 3 is pressed; publish each change; loop(.001)
levels, _ = read_pins()
last = levels & 1
published = 0
while True:
    levels, edges = read_pins()
    if levels & 8:
        break
    current = levels & 1
    if current != last:
        client.publish("button/0", '{"state":%d,"seq":%d}' % (current, edges - 1))
        published += 1
    last = current
    client.loop(timeout=0.001)

# everything queued out, then a clean disconnect
for _ in range(10):
    client.loop(timeout=0.001)
client.disconnect()
while client.loop(timeout=0.01) == mqtt.MQTT_ERR_SUCCESS:
    pass
print(json.dumps({"published": published}))
sys.stdout.flush()
