"""Helpers of the web page tests: scraping and parsing /metrics, reading /api/info."""
import json
import re
import time
import urllib.request


def get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.headers.get("Content-Type", ""), r.read().decode()


def wait_http(port, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return json.loads(get(port, "/api/info")[1])
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')


def parse_metrics(text):
    """{(name, frozenset of label pairs): value} of an OpenMetrics text; checks that
    it ends with `# EOF` and that every family has its TYPE line first."""
    assert text.rstrip().endswith("# EOF"), text[-200:]
    typed, out = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, labels, value = m.groups()
        assert any(name == t or name.startswith(t + "_") for t in typed), f"{name} before its TYPE"
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels or ""))
        out[(name, pairs)] = float(value)
    return out


def metric(m, name, **labels):
    return m[(name, frozenset((k, str(v)) for k, v in labels.items()))]
