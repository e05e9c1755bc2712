"""A broker that misbehaves in ways a real one cannot be made to: just enough MQTT
3.1.1 to take a CONNECT and a SUBSCRIBE (CONNACK, SUBACK), then one of these
behaviours on the first connection; later connections are served honestly
(PUBACK, PUBREC/PUBCOMP, PINGRESP), so a test can see the daemon give the bad
connection up and recover.

- `flood`: stops reading and keeps sending QoS 1 LED commands (each wants a PUBACK
  and gives an LED state to publish) for as long as the socket takes them.
- `huge`: announces a PUBACK of 268,435,455 bytes, then goes on answering normally
  (every later PUBACK and PINGRESP is inside the announced frame).
- `drip`: sends the start of a PUBLISH that never ends, one byte a second, and
  answers nothing else.
- `noack`: answers PINGREQ but never acknowledges a message.
- `refuse`: answers every filter of the first SUBSCRIBE with the failure code 0x80
  (as a broker with an ACL does), then serves honestly.
- `sink`: reads nothing more, with a small receive buffer, and sends nothing. When
  the daemon connects again, what the first connection's kernel received (and
  acknowledged) is peeked at, not read, so no more arrives: `received` counts the
  button events in it.

Every connection is recorded (time opened, time closed, messages received)."""
import fcntl
import socket
import struct
import termios
import threading
import time

FLOOD_TOPIC = "led/0/set"


def _remaining_length(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic, payload, qos=0, pkid=0):
    t = topic.encode()
    body = struct.pack(">H", len(t)) + t
    if qos:
        body += struct.pack(">H", pkid)
    body += payload
    return bytes([0x30 | (qos << 1)]) + _remaining_length(len(body)) + body


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.opened = time.monotonic()
        self.closed = None
        self.publishes = 0
        self.events = 0
        self.pings = 0
        self.received = None


class HostileBroker:
    def __init__(self, mode):
        assert mode in ("flood", "huge", "drip", "noack", "sink", "refuse")
        self.mode = mode
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mode == "sink":
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.port = self.lsock.getsockname()[1]
        self.conns = []
        self.lock = threading.Lock()
        self.stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self):
        return f"mqtt://127.0.0.1:{self.port}"

    def close(self):
        self.stopped = True
        try:
            self.lsock.close()
        except OSError:
            pass
        with self.lock:
            for c in self.conns:
                try:
                    c.sock.close()
                except OSError:
                    pass

    def connections(self):
        with self.lock:
            return list(self.conns)

    def wait_connections(self, n, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.connections()) >= n:
                return True
            time.sleep(0.05)
        return False

    def _accept(self):
        while not self.stopped:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                first = not self.conns
                if not first and self.mode == "sink" and self.conns[0].received is None:
                    self.conns[0].received = self.conns[0].events + _peek_events(self.conns[0].sock)
                c = Conn(s)
                self.conns.append(c)
            threading.Thread(target=self._serve, args=(c, first), daemon=True).start()

    def _read_packet(self, s, buf):
        """One packet (type byte, body) from `s`, `buf` holding what was read ahead."""
        while True:
            if len(buf) >= 2:
                n, mult, i = 0, 1, 1
                while i < len(buf) and i <= 4:
                    b = buf[i]
                    n += (b & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not b & 0x80:
                        if len(buf) >= i + n:
                            t, body = buf[0], bytes(buf[i:i + n])
                            del buf[:i + n]
                            return t, body
                        break
            d = s.recv(65536)
            if not d:
                raise ConnectionError("closed")
            buf += d

    def _serve(self, c, first):
        s = c.sock
        buf = bytearray()
        try:
            t, _ = self._read_packet(s, buf)
            assert t >> 4 == 1, "expected CONNECT"
            s.sendall(b"\x20\x02\x00\x00")
            while True:
                t, body = self._read_packet(s, buf)
                if t >> 4 == 8:
                    pkid = body[:2]
                    # count the filters for as many return codes
                    i, n = 2, 0
                    while i < len(body):
                        (ln,) = struct.unpack(">H", body[i:i + 2])
                        i += 2 + ln + 1
                        n += 1
                    code = b"\x80" if first and self.mode == "refuse" else b"\x01"
                    s.sendall(b"\x90" + bytes([2 + n]) + pkid + code * n)
                    break
                self._answer(c, t, body)
            if first:
                getattr(self, "_" + self.mode)(c, buf)
            self._honest(c, buf)
        except (OSError, ConnectionError, AssertionError):
            pass
        finally:
            c.closed = time.monotonic()
            try:
                s.close()
            except OSError:
                pass

    def _answer(self, c, t, body, ack=True):
        kind = t >> 4
        if kind == 3:
            c.publishes += 1
            (ln,) = struct.unpack(">H", body[:2])
            c.events += body[2:2 + ln].startswith(b"button/")
            qos = (t >> 1) & 3
            if qos and ack:
                (ln,) = struct.unpack(">H", body[:2])
                pkid = body[2 + ln:4 + ln]
                c.sock.sendall((b"\x40\x02" if qos == 1 else b"\x50\x02") + pkid)
        elif kind == 6 and ack:  # PUBREL
            c.sock.sendall(b"\x70\x02" + body[:2])
        elif kind == 12:
            c.pings += 1
            c.sock.sendall(b"\xd0\x00")
        elif kind == 14:
            raise ConnectionError("DISCONNECT")

    def _honest(self, c, buf):
        while True:
            t, body = self._read_packet(c.sock, buf)
            self._answer(c, t, body)

    def _flood(self, c, buf):
        pkid = 0
        while not self.stopped:
            pkid = pkid % 60000 + 1
            c.sock.sendall(publish_packet(FLOOD_TOPIC, b"toggle", qos=1, pkid=pkid))

    def _huge(self, c, buf):
        c.sock.sendall(b"\x40\xff\xff\xff\x7f")
        self._honest(c, buf)

    def _drip(self, c, buf):
        c.sock.setblocking(False)
        frame = publish_packet("x", b"y" * 1000)
        k = 0
        while not self.stopped:
            c.sock.send(frame[k:k + 1])
            k += 1
            # read and drop what the daemon sends, answering nothing
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                try:
                    if c.sock.recv(65536) == b"":
                        raise ConnectionError("closed")
                except BlockingIOError:
                    time.sleep(0.05)

    def _sink(self, c, buf):
        # what was read ahead with the SUBSCRIBE was received too
        c.events += count_events(bytes(buf))
        while not self.stopped:
            time.sleep(0.1)

    def _refuse(self, c, buf):
        self._honest(c, buf)

    def _noack(self, c, buf):
        while True:
            t, body = self._read_packet(c.sock, buf)
            self._answer(c, t, body, ack=False)


def _peek_events(sock):
    """Button events complete in what `sock` has received and not read (peeked at,
    so the receive window stays shut)."""
    n = struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    return count_events(sock.recv(n, socket.MSG_PEEK) if n else b"")


def count_events(data):
    """Button events complete in `data` (whole packets from its start)."""
    events, i = 0, 0
    while i + 2 <= len(data):
        ln, mult, j = 0, 1, i + 1
        while j < len(data) and j <= i + 4:
            b = data[j]
            ln += (b & 0x7F) * mult
            mult *= 128
            j += 1
            if not b & 0x80:
                break
        else:
            break
        if j + ln > len(data):
            break
        if data[i] >> 4 == 3:
            (tl,) = struct.unpack(">H", data[j:j + 2])
            events += data[j + 2:j + 2 + tl].startswith(b"button/")
        i = j + ln
    return events
