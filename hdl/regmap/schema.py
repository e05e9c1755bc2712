"""Loads pynq_mqtt_io.toml and checks it against the schema below.

Every mistake is refused with one line that names the file, the register (and field)
and the key, e.g. `pynq_mqtt_io.toml: register SCRATCH: unknown key 'rest' (did you
mean 'reset'?)`, so a typo can never load silently and generate the wrong hardware.

After loading, every register has `count`, `stride` and a list `fields` (a register
without fields gets one implicit field named "" over bits [31:0]); every field has its
effective `access`, `reset` (an int, "ones", or absent), `present` (a parameter name,
or absent: always built) and `kind`, the storage and hardware behaviour the generator
builds for it (see KINDS).
"""
import difflib
import re
import tomllib

ACCESS = {"ro", "rw", "rc", "wo", "w1c", "wsub"}
# what the generated register block builds for a field:
#   const    a constant (`value`)                  ro_in   read from hw2reg_<f>
#   ro_load  storage loaded by hw (_d, _de)        rc      read from hw2reg_<f>; reading pops (_re)
#   rw       storage, reg2hw_<f>                   rw_load rw, plus a hardware load (_d, _de)
#   rw_ext   no storage: reads hw2reg_<f>, a write gives reg2hw_<f> and _qe
#   wo       a write gives reg2hw_<f> (strobed bytes, others 0) and _qe; reads 0
#   w1c      sticky storage: hw2reg_<f>_set sets (wins), writing 1 clears
#   wsub     storage: a write subtracts (floor 0), hw2reg_<f>_add adds (ceiling all ones);
#            `add_width` bounds what the hardware adds per clock (default: the field's width)
KINDS = {"const", "ro_in", "ro_load", "rc", "rw", "rw_load", "rw_ext", "wo", "w1c", "wsub"}
STORAGE = {"ro_load", "rw", "rw_load", "w1c", "wsub"}  # these need a reset value
HW = {"load", "ext"}

TOP_KEYS = {"ip": True, "params": True, "reg": True}
IP_KEYS = {"name": True, "id": True, "version_major": True, "version_minor": True,
           "addr_width": True}
REG_KEYS = {"name": True, "offset": True, "access": True, "desc": True, "reset": False,
            "fields": False, "count": False, "stride": False, "implemented": False,
            "present": False, "value": False, "hw": False, "add_width": False}
FIELD_KEYS = {"name": True, "lsb": True, "width": True, "desc": True, "access": False,
              "reset": False, "present": False, "value": False, "hw": False, "add_width": False}
IP_VALUES = {"id", "version_major", "version_minor"}


class RegmapError(Exception):
    """One line: file, register (and field), key, what is wrong."""


def _hint(key, known):
    close = difflib.get_close_matches(key, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"


def _keys(where, table, schema, fail):
    if not isinstance(table, dict):
        fail(f"{where}: expected a table, found {type(table).__name__}")
    for key in table:
        if key not in schema:
            fail(f"{where}: unknown key {key!r}{_hint(key, list(schema))}")
    for key, required in schema.items():
        if required and key not in table:
            fail(f"{where}: missing key {key!r}")


def _int(where, key, v, lo, hi, fail):
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        fail(f"{where}: {key} = {v!r} is not an integer in {lo}..{hi}")


def value_names(spec):
    """Names a `value` may take: [ip] keys, parameters, and parameter_LOG2."""
    params = spec["params"]
    return IP_VALUES | set(params) | {f"{p}_LOG2" for p in params}


def load(path):
    name = path.name

    def fail(msg):
        raise RegmapError(f"{name}: {msg}")

    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        fail(f"not TOML: {e}")
    _keys("top level", spec, TOP_KEYS, fail)
    _keys("[ip]", spec["ip"], IP_KEYS, fail)
    ip = spec["ip"]
    _int("[ip]", "id", ip["id"], 0, 0xFFFFFFFF, fail)
    _int("[ip]", "version_major", ip["version_major"], 0, 255, fail)
    _int("[ip]", "version_minor", ip["version_minor"], 0, 255, fail)
    _int("[ip]", "addr_width", ip["addr_width"], 3, 32, fail)
    if not isinstance(spec["params"], dict):
        fail("[params]: expected a table of NAME = default")
    for p, v in spec["params"].items():
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", p):
            fail(f"[params]: {p!r} is not an upper-case parameter name")
        _int("[params]", p, v, 0, 0xFFFFFFFF, fail)
    if not isinstance(spec["reg"], list) or not spec["reg"]:
        fail("no [[reg]] entries")

    names, used = set(), {}
    window = 1 << ip["addr_width"]
    for i, r in enumerate(spec["reg"]):
        rname = r.get("name", f"#{i + 1}") if isinstance(r, dict) else f"#{i + 1}"
        where = f"register {rname}"
        _keys(where, r, REG_KEYS, fail)
        if not isinstance(rname, str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", rname):
            fail(f"{where}: name must be an upper-case identifier")
        if rname in names:
            fail(f"{where}: name reused")
        names.add(rname)
        _int(where, "offset", r["offset"], 0, window - 4, fail)
        _check_reg(where, r, spec, fail)
        for k in range(r["count"]):
            off = r["offset"] + k * r["stride"]
            if off % 4 or off >= window:
                fail(f"{where}: offset 0x{off:X} misaligned or outside the {window}-byte window")
            if off in used:
                fail(f"{where}: offset 0x{off:X} already taken by {used[off]}")
            used[off] = rname
    return spec


def _check_reg(where, r, spec, fail):
    if r["access"] not in ACCESS:
        fail(f"{where}: access = {r['access']!r} unknown{_hint(r['access'], ACCESS)}")
    if not isinstance(r["desc"], str) or not r["desc"].strip():
        fail(f"{where}: desc must be a non-empty string")
    is_array = "count" in r
    if is_array:
        _int(where, "count", r["count"], 2, 1024, fail)
        if "stride" not in r:
            fail(f"{where}: an array (count) needs a stride")
        _int(where, "stride", r["stride"], 4, 1 << 16, fail)
        if r["stride"] % 4:
            fail(f"{where}: stride = {r['stride']} is not a multiple of 4")
    elif "stride" in r:
        fail(f"{where}: stride without count (not an array)")
    r.setdefault("count", 1)
    r.setdefault("stride", 4)
    explicit = "fields" in r
    if explicit:
        if not isinstance(r["fields"], list) or not r["fields"]:
            fail(f"{where}: fields must be a non-empty list")
        for key in ("value", "hw", "add_width"):
            if key in r:
                fail(f"{where}: {key} belongs on its fields when a register has fields")
        fields = r["fields"]
    else:
        fields = [{"name": "", "lsb": 0, "width": 32, "desc": r["desc"]}]
        for key in ("value", "hw", "add_width"):
            if key in r:
                fields[0][key] = r[key]
    if "implemented" in r:
        if r["implemented"] not in spec["params"]:
            fail(f"{where}: implemented = {r['implemented']!r} is not a parameter"
                 f"{_hint(str(r['implemented']), spec['params'])}")
        if explicit and not is_array:
            fail(f"{where}: implemented applies to a register without fields, or to an array")
    if "present" in r:
        _param_name(where, "present", r["present"], spec, fail)
    if "present" in r and is_array:
        fail(f"{where}: present does not apply to an array")
    reset = r.get("reset")
    if reset is not None and reset != "ones":
        _int(where, "reset", reset, 0, 0xFFFFFFFF, fail)

    seen, bits = set(), 0
    for f in fields:
        fw = f"{where} field {f.get('name', '?')}" if explicit else where
        if explicit:
            _keys(fw, f, FIELD_KEYS, fail)
            if not isinstance(f["name"], str) or not re.fullmatch(r"[A-Z][A-Z0-9_]*", f["name"]):
                fail(f"{fw}: name must be an upper-case identifier")
            if f["name"] in seen:
                fail(f"{fw}: name reused")
            seen.add(f["name"])
        _int(fw, "lsb", f["lsb"], 0, 31, fail)
        _int(fw, "width", f["width"], 1, 32, fail)
        if f["lsb"] + f["width"] > 32:
            fail(f"{fw}: bits [{f['lsb'] + f['width'] - 1}:{f['lsb']}] out of range (a register has 32)")
        mask = ((1 << f["width"]) - 1) << f["lsb"]
        if bits & mask:
            fail(f"{fw}: bits [{f['lsb'] + f['width'] - 1}:{f['lsb']}] overlap another field")
        bits |= mask
        f.setdefault("access", r["access"])
        if "present" in f:
            _param_name(fw, "present", f["present"], spec, fail)
        elif "present" in r:
            f["present"] = r["present"]
        if "present" in f and "value" in f:
            fail(f"{fw}: present does not go with a constant value")
        if f["access"] not in ACCESS:
            fail(f"{fw}: access = {f['access']!r} unknown{_hint(f['access'], ACCESS)}")
        if "reset" in f:
            if f["reset"] != "ones":
                _int(fw, "reset", f["reset"], 0, (1 << f["width"]) - 1, fail)
        elif reset is not None:
            f["reset"] = "ones" if reset == "ones" else (reset >> f["lsb"]) & ((1 << f["width"]) - 1)
        f["kind"] = _kind(fw, f, spec, fail)
        if "add_width" in f:
            if f["kind"] != "wsub":
                fail(f"{fw}: add_width is only for access wsub")
            _int(fw, "add_width", f["add_width"], 1, f["width"], fail)
        if f["kind"] in STORAGE and "reset" not in f:
            fail(f"{fw}: access {f['access']} keeps state and needs a reset")
        if f["kind"] in {"wo", "rc"} and "reset" in f:
            fail(f"{fw}: a reset means nothing for access {f['access']} (it holds no value)")
    if isinstance(reset, int) and reset & ~bits:
        fail(f"{where}: reset = 0x{reset:X} sets bits outside its fields")
    if is_array:
        shapes = {(f["width"], f["kind"]) for f in fields}
        if len(shapes) != 1 or fields[0]["kind"] != "rw":
            fail(f"{where}: an array's fields must all be rw and of one width")
        w = fields[0]["width"]
        if any(f["lsb"] != j * w for j, f in enumerate(fields)):
            fail(f"{where}: an array's fields must be packed from bit 0 in order")
    r["fields"] = fields
    r["explicit_fields"] = explicit


def _param_name(where, key, v, spec, fail):
    if not isinstance(v, str) or v not in spec["params"]:
        fail(f"{where}: {key} = {v!r} is not a parameter{_hint(str(v), spec['params'])}")


def _kind(where, f, spec, fail):
    access, hw = f["access"], f.get("hw")
    if hw is not None and hw not in HW:
        fail(f"{where}: hw = {hw!r} unknown{_hint(str(hw), HW)}")
    if "value" in f:
        v = f["value"]
        if access != "ro" or hw is not None:
            fail(f"{where}: value is only for a read-only field without hw")
        if isinstance(v, str):
            if v not in value_names(spec):
                fail(f"{where}: value = {v!r} names nothing{_hint(v, value_names(spec))}")
        else:
            _int(where, "value", v, 0, (1 << f["width"]) - 1, fail)
        return "const"
    table = {
        ("ro", None): "ro_in", ("ro", "load"): "ro_load", ("rc", None): "rc",
        ("rw", None): "rw", ("rw", "load"): "rw_load", ("rw", "ext"): "rw_ext",
        ("wo", None): "wo", ("w1c", None): "w1c", ("wsub", None): "wsub",
    }
    if (access, hw) not in table:
        fail(f"{where}: hw = {hw!r} does not go with access {access}")
    return table[(access, hw)]
