"""The register map's schema check refuses every malformed map with one line naming the
file, the register (and field) and the key. Each case edits the real map in one place.

    .venv/bin/python -m pytest -q -p no:cacheprovider hdl/regmap
"""
import re
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from schema import RegmapError, load  # noqa: E402

SOURCE = HERE / "pynq_mqtt_io.toml"


def reg_block(text, name):
    """(start, end) of the [[reg]] entry named `name` in the map's text."""
    start = text.index(f'[[reg]]\nname = "{name}"\n')
    nxt = text.find("\n[[reg]]", start + 1)
    return start, (len(text) if nxt < 0 else nxt)


def edit(text, reg, old, new):
    start, end = reg_block(text, reg)
    block = text[start:end]
    assert block.count(old) == 1, f"{reg}: {old!r} not found once"
    return text[:start] + block.replace(old, new) + text[end:]


def refused(tmp_path, text):
    path = tmp_path / SOURCE.name
    path.write_text(text)
    with pytest.raises(RegmapError) as e:
        load(path)
    msg = str(e.value)
    assert "\n" not in msg, f"more than one line: {msg!r}"
    assert msg.startswith(f"{SOURCE.name}: "), msg
    return msg


BASE = SOURCE.read_text()

CASES = [
    # (what, register, old, new, expected message pattern)
    ("unknown register key", "SCRATCH", "reset = 0\n", "reset = 0\nrest = 5\n",
     r"register SCRATCH: unknown key 'rest' \(did you mean 'reset'\?\)"),
    ("unknown field key", "VERSION", 'width = 8, value = "version_minor"',
     'width = 8, acess = "ro", value = "version_minor"',
     r"register VERSION field MINOR: unknown key 'acess' \(did you mean 'access'\?\)"),
    ("rw without reset", "SCRATCH", "reset = 0\n", "",
     r"register SCRATCH: access rw keeps state and needs a reset"),
    ("w1c without reset", "IRQ_STATUS", "reset = 0\n", "",
     r"register IRQ_STATUS field OVERFLOW: access w1c keeps state and needs a reset"),
    ("wsub without reset", "DROPPED", "reset = 0\n", "",
     r"register DROPPED: access wsub keeps state and needs a reset"),
    ("hardware-loaded without reset", "EVT_TS", "reset = 0\n", "",
     r"register EVT_TS: access ro keeps state and needs a reset"),
    ("rw field without reset", "IRQ_ENABLE", "reset = 0\n", "",
     r"register IRQ_ENABLE field EVENT: access rw keeps state and needs a reset"),
    ("overlapping fields", "VERSION", 'name = "MAJOR", lsb = 24', 'name = "MAJOR", lsb = 20',
     r"register VERSION field MAJOR: bits \[27:20\] overlap another field"),
    ("field beyond bit 31", "DEBOUNCE_US", "lsb = 0, width = 16", "lsb = 24, width = 16",
     r"register DEBOUNCE_US field TIME: bits \[39:24\] out of range"),
    ("zero-width field", "DEBOUNCE_US", "lsb = 0, width = 16", "lsb = 0, width = 0",
     r"register DEBOUNCE_US field TIME: width = 0 is not an integer in 1\.\.32"),
    ("unknown access", "SCRATCH", 'access = "rw"', 'access = "rx"',
     r"register SCRATCH: access = 'rx' unknown \(known: rc, ro, rw, w1c, wo, wsub\)"),
    ("unknown field access", "IRQ_STATUS", 'name = "OVERFLOW", lsb = 1, width = 1, access = "w1c"',
     'name = "OVERFLOW", lsb = 1, width = 1, access = "rw1"',
     r"register IRQ_STATUS field OVERFLOW: access = 'rw1' unknown"),
    ("array without stride", "LED_PWM", "stride = 4\n", "",
     r"register LED_PWM: an array \(count\) needs a stride"),
    ("array stride not a word", "LED_PWM", "stride = 4\n", "stride = 6\n",
     r"register LED_PWM: stride = 6 is not a multiple of 4"),
    ("array of one", "LED_PWM", "count = 8\n", "count = 1\n",
     r"register LED_PWM: count = 1 is not an integer in 2\.\.1024"),
    ("array overlapping another register", "LED_PWM", "offset = 0xA0", "offset = 0x7C",
     r"register LED_PWM: offset 0x80 already taken by LED"),
    ("array of mixed fields", "LED_PWM", '{ name = "LED3", lsb = 24, width = 8,',
     '{ name = "LED3", lsb = 24, width = 8, access = "ro",',
     r"register LED_PWM: an array's fields must all be rw and of one width"),
    ("stride without count", "SCRATCH", "reset = 0\n", "reset = 0\nstride = 4\n",
     r"register SCRATCH: stride without count"),
    ("offset taken", "SCRATCH", "offset = 0x08", "offset = 0x04",
     r"register SCRATCH: offset 0x4 already taken by VERSION"),
    ("offset misaligned", "SCRATCH", "offset = 0x08", "offset = 0x09",
     r"register SCRATCH: offset 0x9 misaligned"),
    ("reset wider than its field", "IRQ_THRESHOLD", "reset = 1\n", "reset = 0x10000\n",
     r"register IRQ_THRESHOLD: reset = 0x10000 sets bits outside its fields"),
    ("reset of a write-only register", "LED_SET", 'access = "wo"\n', 'access = "wo"\nreset = 0\n',
     r"register LED_SET: a reset means nothing for access wo"),
    ("implemented names no parameter", "INPUT_ENABLE", 'implemented = "N_INPUTS"',
     'implemented = "N_INPUT"', r"register INPUT_ENABLE: implemented = 'N_INPUT' is not a parameter"),
    ("value on a writable register", "SCRATCH", "reset = 0\n", 'reset = 0\nvalue = 3\n',
     r"register SCRATCH: value is only for a read-only field without hw"),
    ("value names nothing", "CLK_HZ", 'value = "CLK_HZ"', 'value = "CLK_MHZ"',
     r"register CLK_HZ: value = 'CLK_MHZ' names nothing"),
    ("hw ext on a read-only register", "EVT_TS", 'hw = "load"', 'hw = "ext"',
     r"register EVT_TS: hw = 'ext' does not go with access ro"),
    ("unknown hw", "EVT_TS", 'hw = "load"', 'hw = "lod"',
     r"register EVT_TS: hw = 'lod' unknown \(did you mean 'load'\?\)"),
    ("add_width off wsub", "SCRATCH", "reset = 0\n", "reset = 0\nadd_width = 4\n",
     r"register SCRATCH: add_width is only for access wsub"),
    ("add_width wider than the field", "DROPPED", "add_width = 6", "add_width = 33",
     r"register DROPPED: add_width = 33 is not an integer in 1\.\.32"),
    ("name reused", "SCRATCH", 'name = "SCRATCH"', 'name = "VERSION"',
     r"register VERSION: name reused"),
    ("present names no parameter", "GEN_COUNT", 'present = "WITH_GEN"', 'present = "WITH_GENERATOR"',
     r"register GEN_COUNT: present = 'WITH_GENERATOR' is not a parameter \(did you mean 'WITH_GEN'\?\)"),
    ("present of a field names no parameter", "IRQ_ENABLE", 'present = "WITH_GEN"', 'present = "GEN"',
     r"register IRQ_ENABLE field GEN_DONE: present = 'GEN' is not a parameter"),
    ("present on an array", "LED_PWM", "stride = 4\n", 'stride = 4\npresent = "WITH_GEN"\n',
     r"register LED_PWM: present does not apply to an array"),
    ("present on a constant", "PARAMS", 'value = "WITH_GEN",', 'value = "WITH_GEN", present = "WITH_GEN",',
     r"register PARAMS field GENERATOR: present does not go with a constant value"),
    ("missing desc", "SCRATCH", "desc = ", "note = ",
     r"register SCRATCH: unknown key 'note'"),
]


@pytest.mark.parametrize("what,reg,old,new,pattern", CASES, ids=[c[0] for c in CASES])
def test_refused(tmp_path, what, reg, old, new, pattern):
    msg = refused(tmp_path, edit(BASE, reg, old, new))
    assert re.search(pattern, msg), f"{what}: {msg}"


def test_unknown_top_level_and_ip_keys(tmp_path):
    msg = refused(tmp_path, BASE.replace("[ip]\n", "[ipp]\nx = 1\n[ip]\n", 1))
    assert "top level: unknown key 'ipp' (did you mean 'ip'?)" in msg
    msg = refused(tmp_path, BASE.replace("addr_width = 16", "addr_widht = 16", 1))
    assert "[ip]: unknown key 'addr_widht' (did you mean 'addr_width'?)" in msg
    msg = refused(tmp_path, BASE.replace("N_LEDS = 4\n", "n_leds = 4\n", 1))
    assert "[params]: 'n_leds' is not an upper-case parameter name" in msg


def test_the_map_itself_loads():
    spec = load(SOURCE)
    by_name = {r["name"]: r for r in spec["reg"]}
    kinds = {f["kind"] for r in spec["reg"] for f in r["fields"]}
    # the map uses every kind the generator knows, so each is generated and tested
    assert kinds == {"const", "ro_in", "ro_load", "rc", "rw", "rw_load", "rw_ext", "wo", "w1c", "wsub"}
    assert by_name["IRQ_STATUS"]["fields"][1]["reset"] == 0
    assert by_name["LED_PWM"]["fields"][0]["reset"] == 0xFF
    assert by_name["INPUT_ENABLE"]["fields"][0]["reset"] == "ones"
    # the generator's registers and interrupt bits are built only with WITH_GEN (default 0)
    assert spec["params"]["WITH_GEN"] == 0
    gen = {(r["name"], f["name"]) for r in spec["reg"] for f in r["fields"] if f.get("present")}
    assert gen == {("GEN_CTRL", "ENABLE"), ("GEN_COUNT", ""), ("GEN_PERIOD", ""), ("GEN_PATTERN", ""),
                   ("GEN_SENT", ""), ("IRQ_ENABLE", "GEN_DONE"), ("IRQ_STATUS", "GEN_DONE")}
    assert all(f["present"] == "WITH_GEN" for r in spec["reg"] for f in r["fields"] if f.get("present"))
