#!/usr/bin/env python3
"""Generate the register-map artefacts of pynq_mqtt_io from pynq_mqtt_io.toml.

    regmap.py            check the map and write every generated file
    regmap.py --check    exit 1 (and name the file) when a generated file is stale

The map is checked first (schema.py): an unknown key, a missing reset, overlapping or
out-of-range fields, an unknown access type or a malformed array is refused with one
line naming file, register and key. Then:
  hdl/rtl/pmq_regs.v               the register block (gen_rtl.py): storage, reset,
                                   access behaviour and read packing of every field
  hdl/rtl/pynq_mqtt_io_regs.vh     Verilog constants (field positions and widths)
  hdl/include/pynq_mqtt_io_regs.h  C header (the Verilated shim includes it)
  host/regs/src/generated.rs       Rust offsets, typed fields, the register table
  docs/registers.md                the Markdown table
  overlays/pynq_mqtt/pynq_mqtt_io_regs.{xml,tcl}  the IP-XACT memory map (gen_ipxact.py)
                                   and the same as Tcl data, which package_ip.tcl applies
"""
import argparse
import pathlib
import shutil
import subprocess
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gen_ipxact import gen_tcl, gen_xml  # noqa: E402
from gen_rtl import BANNER, gen_regblock, port  # noqa: E402
from schema import RegmapError, load  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SOURCE = HERE / "pynq_mqtt_io.toml"
RUST_ACCESS = {"ro": "ReadOnly", "rw": "ReadWrite", "rc": "ReadPops", "wo": "WriteOnly",
               "w1c": "WriteOneToClear", "wsub": "WriteSubtracts"}


def declared(r):
    """The fields the map declares (a register without fields has none here)."""
    return r["fields"] if r["explicit_fields"] else []


def field_mask(f):
    return ((1 << f["width"]) - 1) << f["lsb"]


def elements(r):
    """(name, offset) of each register of an array, or of the one register."""
    if r["count"] == 1:
        return [(r["name"], r["offset"])]
    return [(f"{r['name']}{k}", r["offset"] + k * r["stride"]) for k in range(r["count"])]


def reset_text(r):
    if "reset" not in r:
        return ""
    return "all implemented bits" if r["reset"] == "ones" else f"0x{r['reset']:X}"


# ---- Verilog --------------------------------------------------------------------------

def gen_verilog_consts(spec):
    ip = spec["ip"]
    aw = ip["addr_width"]
    out = [f"// {BANNER}", "// Constants of the register map, included inside the module body of pynq_mqtt_io;",
           "// not every constant is used.", "/* verilator lint_off UNUSEDPARAM */", ""]
    out.append(f"localparam [31:0] PMQ_ID_VALUE = 32'h{ip['id']:08X};")
    out.append(f"localparam [7:0] PMQ_VERSION_MAJOR = 8'd{ip['version_major']};")
    out.append(f"localparam [7:0] PMQ_VERSION_MINOR = 8'd{ip['version_minor']};")
    out.append(f"localparam integer PMQ_ADDR_WIDTH = {aw};")
    out.append("")
    for r in spec["reg"]:
        for name, off in elements(r):
            out.append(f"localparam [{aw - 1}:0] PMQ_ADDR_{name} = {aw}'h{off:04X};")
        if r["count"] > 1:
            out.append(f"localparam integer PMQ_COUNT_{r['name']} = {r['count']};")
        for f in declared(r):
            out.append(f"localparam integer PMQ_{r['name']}_{f['name']}_LSB = {f['lsb']};")
            out.append(f"localparam integer PMQ_{r['name']}_{f['name']}_WIDTH = {f['width']};")
        if isinstance(r.get("reset"), int):
            out.append(f"localparam [31:0] PMQ_RESET_{r['name']} = 32'h{r['reset']:08X};")
        for f in r["fields"]:
            if "add_width" in f:
                fn = f"{r['name']}_{f['name']}" if f["name"] else r["name"]
                out.append(f"localparam integer PMQ_{fn}_ADD_WIDTH = {f['add_width']};")
    out.append("/* verilator lint_on UNUSEDPARAM */")
    return "\n".join(out) + "\n"


# ---- C ----------------------------------------------------------------------------------

def gen_c(spec):
    ip = spec["ip"]
    guard = "PYNQ_MQTT_IO_REGS_H"
    out = [f"/* {BANNER} */", f"#ifndef {guard}", f"#define {guard}", ""]
    out.append(f"#define PMQ_ID_VALUE 0x{ip['id']:08X}u")
    out.append(f"#define PMQ_VERSION_MAJOR {ip['version_major']}u")
    out.append(f"#define PMQ_VERSION_MINOR {ip['version_minor']}u")
    out.append(f"#define PMQ_WINDOW_BYTES 0x{1 << ip['addr_width']:X}u")
    out.append("")
    for r in spec["reg"]:
        out.append(f"/* {r['name']} ({r['access']}): {r['desc']} */")
        for name, off in elements(r):
            out.append(f"#define PMQ_{name} 0x{off:02X}u")
        if r["count"] > 1:
            out.append(f"#define PMQ_{r['name']}(k) (0x{r['offset']:02X}u + (k) * {r['stride']}u)")
            out.append(f"#define PMQ_{r['name']}_COUNT {r['count']}u")
        for f in declared(r):
            out.append(f"#define PMQ_{r['name']}_{f['name']}_SHIFT {f['lsb']}u")
            out.append(f"#define PMQ_{r['name']}_{f['name']}_MASK 0x{field_mask(f):08X}u")
    out += ["", f"#endif /* {guard} */"]
    return "\n".join(out) + "\n"


# ---- Rust -------------------------------------------------------------------------------

def camel(name):
    return "".join(w.capitalize() for w in name.lower().split("_"))


def rust_type(width):
    return "bool" if width == 1 else ("u8" if width <= 8 else ("u16" if width <= 16 else "u32"))


def gen_rust(spec):
    ip = spec["ip"]
    out = [f"// {BANNER}", ""]
    out.append("use crate::{Access, FieldDesc, RegArray, RegDesc, RegValue, Reset};")
    out.append("use crate::{ReadPops, Reg, Ro, Rw, W1c, WSub, Wo};")
    out.append("")
    out.append(f"/// Value of the ID register: \"{ip['id'].to_bytes(4, 'big').decode()}\".")
    out.append(f"pub const ID_VALUE: u32 = 0x{ip['id']:08X};")
    out.append("/// Register-map major version this host code was built for.")
    out.append(f"pub const VERSION_MAJOR: u8 = {ip['version_major']};")
    out.append("/// Register-map minor version this host code was built for.")
    out.append(f"pub const VERSION_MINOR: u8 = {ip['version_minor']};")
    out.append("/// Size of the register window in bytes.")
    out.append(f"pub const WINDOW_BYTES: usize = 0x{1 << ip['addr_width']:X};")
    out.append("")
    out.append("/// Byte offsets of the registers.")
    out.append("pub mod offset {")
    for r in spec["reg"]:
        out.append(f"    /// {r['desc']}")
        if r["count"] == 1:
            out.append(f"    pub const {r['name']}: u32 = 0x{r['offset']:02X};")
        else:
            out.append(f"    pub const {r['name']}: [u32; {r['count']}] = [")
            for _, off in elements(r):
                out.append(f"        0x{off:02X},")
            out.append("    ];")
    out.append("}")
    out.append("")
    for r in spec["reg"]:
        fields = declared(r)
        if not fields:
            continue
        t = camel(r["name"])
        out.append(f"/// Fields of {r['name']}: {r['desc']}")
        out.append("#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]")
        out.append(f"pub struct {t}(pub u32);")
        out.append("")
        out.append(f"impl {t} {{")
        for f in fields:
            fn = f["name"].lower()
            ty = rust_type(f["width"])
            mask = (1 << f["width"]) - 1
            shifted = f"(self.0 >> {f['lsb']})" if f["lsb"] else "self.0"
            placed = f"(v << {f['lsb']})" if f["lsb"] else "v"
            out.append(f"    /// {f['desc']}")
            out.append("    #[inline]")
            out.append(f"    pub const fn {fn}(self) -> {ty} {{")
            out.append(f"        {shifted} & 1 != 0" if ty == "bool" else f"        ({shifted} & 0x{mask:X}) as {ty}")
            out.append("    }")
            out.append("")
            out.append(f"    /// Returns a copy with {f['name']} replaced.")
            out.append("    #[inline]")
            out.append(f"    pub const fn with_{fn}(self, value: {ty}) -> Self {{")
            out.append(f"        let v = (value as u32) & 0x{mask:X};")
            out.append(f"        Self((self.0 & !0x{field_mask(f):08X}) | {placed})")
            out.append("    }")
            out.append("")
        out[-1] = "}"
        out.append("")
    out += gen_rust_typed(spec)
    out.append("/// Every register (each element of an array), in address order.")
    out.append("pub const REGISTERS: &[RegDesc] = &[")
    for r in sorted(spec["reg"], key=lambda r: r["offset"]):
        for name, off in elements(r):
            if "reset" not in r:
                reset = "Reset::None"
            elif r["reset"] == "ones":
                reset = "Reset::AllImplemented"
            else:
                reset = f"Reset::Value(0x{r['reset']:X})"
            out.append("    RegDesc {")
            out.append(f"        name: \"{name}\",")
            out.append(f"        offset: 0x{off:02X},")
            out.append(f"        access: Access::{RUST_ACCESS[r['access']]},")
            out.append(f"        reset: {reset},")
            out.append("        fields: &[")
            for f in declared(r):
                out.append(f"            FieldDesc {{ name: \"{f['name']}\", lsb: {f['lsb']}, width: {f['width']}, "
                           f"access: Access::{RUST_ACCESS[f['access']]} }},")
            out.append("        ],")
            out.append("    },")
    out.append("];")
    return rustfmt("\n".join(out) + "\n")


# the access marker of a register, from the set of its fields' access kinds
RUST_MARKER = {frozenset({"ro"}): "Ro", frozenset({"rw"}): "Rw", frozenset({"wo"}): "Wo",
               frozenset({"rc"}): "ReadPops", frozenset({"wsub"}): "WSub",
               frozenset({"w1c"}): "W1c", frozenset({"ro", "w1c"}): "W1c",
               frozenset({"ro", "rw"}): "Rw"}


def rust_fields(r):
    """The fields that get a typed struct: those the map declares. A loader may also
    fill in one implicit field for a register without fields; that one stays a u32."""
    if r.get("explicit_fields", "fields" in r):
        return r.get("fields", [])
    return []


def rust_marker(r):
    kinds = frozenset(f["access"] for f in rust_fields(r)) or frozenset({r["access"]})
    if kinds not in RUST_MARKER:
        sys.exit(f"{SOURCE.name}: {r['name']}: no Rust access kind for fields {sorted(kinds)}")
    return RUST_MARKER[kinds]


def gen_rust_typed(spec):
    """Each register as a constant that binds its offset to its value type and access."""
    out = []
    for r in spec["reg"]:
        fields = rust_fields(r)
        if fields:
            t = camel(r["name"])
            out.append(f"impl RegValue for {t} {{")
            out.append("    #[inline]")
            out.append(f"    fn from_bits(bits: u32) -> Self {{ Self(bits) }}")
            out.append("    #[inline]")
            out.append("    fn bits(self) -> u32 { self.0 }")
            out.append("}")
            out.append("")
    for r in spec["reg"]:
        t = camel(r["name"]) if rust_fields(r) else "u32"
        m = rust_marker(r)
        out.append(f"/// {r['name']}: {r['desc']}")
        if r["count"] == 1:
            out.append(f"pub const {r['name']}: Reg<{t}, {m}> = Reg::new(\"{r['name']}\", 0x{r['offset']:02X});")
        else:
            names = ", ".join(f'"{n}"' for n, _ in elements(r))
            out.append(f"pub const {r['name']}: RegArray<{t}, {m}, {r['count']}> = "
                       f"RegArray::new([{names}], 0x{r['offset']:02X}, {r['stride']});")
        out.append("")
    return out


def rustfmt(text):
    """Formats generated Rust the way `cargo fmt` would, so the check stays quiet."""
    exe = shutil.which("rustfmt")
    if exe is None:
        sys.exit("regmap.py: rustfmt not found (install Rust with rustup, component rustfmt)")
    return subprocess.run([exe, "--edition", "2021"], input=text, capture_output=True, text=True,
                          check=True).stdout


# ---- Markdown ---------------------------------------------------------------------------

def gen_markdown(spec):
    ip = spec["ip"]
    out = [f"<!-- {BANNER} -->", "", f"# Registers of `{ip['name']}`", ""]
    out.append(f"ID = `0x{ip['id']:08X}`, register map version "
               f"{ip['version_major']}.{ip['version_minor']}, window {1 << ip['addr_width']} bytes. "
               "Access: ro read only, rw read/write, rc reading pops, wo write only (reads 0), "
               "w1c write 1 to clear, wsub a write subtracts.")
    out += ["", "| offset | name | access | reset | fields | description |", "|---|---|---|---|---|---|"]
    for r in spec["reg"]:
        fields = "<br>".join(
            (f"`[{f['lsb'] + f['width'] - 1}:{f['lsb']}]`" if f["width"] > 1 else f"`[{f['lsb']}]`")
            + f" {f['name']}" + (f" ({f['access']})" if f["access"] != r["access"] else "")
            for f in declared(r))
        desc = r["desc"].replace("|", "\\|")
        if r["count"] > 1:
            last = r["offset"] + (r["count"] - 1) * r["stride"]
            where, name = f"`0x{r['offset']:02X}`..`0x{last:02X}`", f"{r['name']}0..{r['count'] - 1}"
        else:
            where, name = f"`0x{r['offset']:02X}`", r["name"]
        if r.get("implemented"):
            desc += f" Only {r['implemented']} {'fields' if r['count'] > 1 else 'bits'} exist; the rest read 0."
        if r.get("present"):
            desc += f" Built only with {r['present']} = 1; else reads 0 and ignores writes."
        for f in declared(r):
            if f.get("present") and not r.get("present"):
                desc += (f" {f['name']} is built only with {f['present']} = 1; else it reads 0"
                         " and ignores writes.")
        out.append(f"| {where} | {name} | {r['access']} | {reset_text(r)} | {fields} | {desc} |")
    out += ["", "## Hardware side", "",
            "The register block `hdl/rtl/pmq_regs.v` is generated from the same file: it holds",
            "each field's storage, reset and access behaviour and packs the read values. The",
            "hand-written RTL sees only these signals (`reg2hw_*` out of the block, `hw2reg_*`",
            "into it; a register without fields has no `_<field>` part):", "",
            "| register | field | behaviour | signals |", "|---|---|---|---|"]
    for r in spec["reg"]:
        if r["count"] > 1:
            f0 = r["fields"][0]
            out.append(f"| {r['name']}0..{r['count'] - 1} | all | stored, read/write | "
                       f"`reg2hw_{r['name'].lower()}`: every field of every element in one vector, "
                       f"field i at bits [{f0['width']}i+{f0['width'] - 1}:{f0['width']}i] |")
            continue
        for f in r["fields"]:
            p = port(r, f)
            k = f["kind"]
            sig = {
                "const": "none (a constant: " + str(f.get("value")) + ")",
                "ro_in": f"`hw2reg_{p}`", "rc": f"`hw2reg_{p}`, `reg2hw_{r['name'].lower()}_re`",
                "ro_load": f"`hw2reg_{p}_d`, `hw2reg_{p}_de`, `reg2hw_{p}`",
                "rw": f"`reg2hw_{p}`", "rw_load": f"`reg2hw_{p}`, `hw2reg_{p}_d`, `hw2reg_{p}_de`",
                "rw_ext": f"`hw2reg_{p}`, `reg2hw_{p}`, `reg2hw_{r['name'].lower()}_qe`",
                "wo": f"`reg2hw_{p}`, `reg2hw_{r['name'].lower()}_qe`",
                "w1c": f"`reg2hw_{p}`, `hw2reg_{p}_set`", "wsub": f"`reg2hw_{p}`, `hw2reg_{p}_add`",
            }[k]
            what = {
                "const": "constant", "ro_in": "read from the hardware",
                "rc": "read from the hardware; a read strobe pops",
                "ro_load": "stored, loaded by the hardware", "rw": "stored, read/write",
                "rw_load": "stored, read/write, also loaded by the hardware",
                "rw_ext": "read from the hardware; a write hands the value over",
                "wo": "a write hands the strobed bits over; reads 0",
                "w1c": "sticky: set by the hardware (wins), cleared by writing 1",
                "wsub": "stored: a write subtracts (floor 0), the hardware adds (saturating)",
            }[k]
            out.append(f"| {r['name']} | {f['name'] or '-'} | {what} | {sig} |")
    return "\n".join(out) + "\n"


TARGETS = [
    ("hdl/rtl/pynq_mqtt_io_regs.vh", gen_verilog_consts),
    ("hdl/rtl/pmq_regs.v", gen_regblock),
    ("hdl/include/pynq_mqtt_io_regs.h", gen_c),
    ("host/regs/src/generated.rs", gen_rust),
    ("docs/registers.md", gen_markdown),
    ("overlays/pynq_mqtt/pynq_mqtt_io_regs.xml", gen_xml),
    ("overlays/pynq_mqtt/pynq_mqtt_io_regs.tcl", gen_tcl),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="fail if a generated file is stale")
    args = ap.parse_args()
    try:
        spec = load(SOURCE)
    except RegmapError as e:
        print(e, file=sys.stderr)
        return 1
    stale = []
    for rel, gen in TARGETS:
        path = ROOT / rel
        text = gen(spec)
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if stale:
        print("stale generated register files (run python3 hdl/regmap/regmap.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
