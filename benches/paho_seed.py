"""The seed notebook's last cell as a publisher: paho-mqtt, one publish() per message
with no network loop in between, then (unlike the seed) the CONNACK is read before a
clean disconnect so that nothing is lost at exit."""

import argparse
import json
import sys
import time
import warnings

import paho.mqtt.client as mqtt

ap = argparse.ArgumentParser()
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--n", type=int, required=True)
a = ap.parse_args()

warnings.simplefilter("ignore", DeprecationWarning)
try:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION1)
except AttributeError:  # paho-mqtt 1.x
    client = mqtt.Client()
client.connect("127.0.0.1", a.port)
start = time.perf_counter()
# the seed's cell: for index in range(10000): client.publish("foo", "bar")
for index in range(a.n):
    client.publish("button/0", "1" if index % 2 == 0 else "0")
elapsed = time.perf_counter() - start


def on_connect(c, userdata, flags, rc):
    c.disconnect()


client.on_connect = on_connect
client.loop_forever()  # reads the CONNACK, writes what is queued, disconnects cleanly
print(json.dumps({"sent": a.n, "secs": elapsed}))
sys.stdout.flush()
