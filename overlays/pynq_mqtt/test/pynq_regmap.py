#!/usr/bin/env python3
"""Checks the IP-XACT register description that package_ip.tcl puts into the IP
(overlays/pynq_mqtt/pynq_mqtt_io_regs.xml, generated from the register map) the way a
notebook user meets it: through PYNQ.

1. The XML parses (xml.etree) and, given --xsd DIR, validates against the IP-XACT
   1685-2009 schema (the one Vivado's component.xml uses; needs lxml).
2. A minimal .hwh is built the way Vivado writes one for this overlay: the PS7 module
   with a MEMRANGE for the IP at 0x43C00000, and the IP's module with
   ADDRESSBLOCKS/ADDRESSBLOCK/REGISTERS/REGISTER/FIELDS/FIELD and their PROPERTY
   entries, taken from the XML.
3. PYNQ's own .hwh parser (pynq.pl_server.hwh_parser) reads it; its ip_dict entry for
   the IP must list every register of the register map with its offset, access and
   fields, and PYNQ's RegisterMap (what `Overlay(...).pynq_mqtt_io_0.register_map`
   is built from) must decode the fields of a register image.

    python pynq_regmap.py [--xsd DIR]     (in a venv with pynq; overlays/pynq_mqtt/check.sh regs)
Exit status 0 when every check passes, 1 otherwise.
"""
import argparse
import sys
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

HERE = Path(__file__).resolve().parent
OVERLAY = HERE.parent
REPO = OVERLAY.parent.parent
XML = OVERLAY / "pynq_mqtt_io_regs.xml"
TOML = REPO / "hdl" / "regmap" / "pynq_mqtt_io.toml"
NS = {"spirit": "http://www.spiritconsortium.org/XMLSchema/SPIRIT/1685-2009"}
BASE = 0x43C00000
INSTANCE = "pynq_mqtt_io_0"


def text(el, tag, default=""):
    found = el.find(f"spirit:{tag}", NS)
    return default if found is None else (found.text or "")


def ipxact_registers(root):
    regs = {}
    for r in root.iterfind(".//spirit:register", NS):
        regs[text(r, "name")] = {
            "offset": int(text(r, "addressOffset"), 0),
            "access": text(r, "access"),
            "desc": text(r, "description"),
            "reset": text(r.find("spirit:reset", NS), "value") if r.find("spirit:reset", NS) is not None else "",
            "fields": {
                text(f, "name"): {
                    "bit_offset": int(text(f, "bitOffset")),
                    "bit_width": int(text(f, "bitWidth")),
                    "access": text(f, "access"),
                    "mwv": text(f, "modifiedWriteValue"),
                    "read_action": text(f, "readAction"),
                    "desc": text(f, "description"),
                }
                for f in r.iterfind("spirit:field", NS)
            },
        }
    return regs


def prop(parent, name, value):
    ET.SubElement(parent, "PROPERTY", NAME=name, VALUE=str(value))


def build_hwh(regs, version):
    """A .hwh with the two modules PYNQ needs: the PS7 (whose MEMORYMAP places the IP)
    and the IP with its register description, as Vivado writes them."""
    root = ET.Element("EDKSYSTEM", EDWVERSION="1.2", VIVADOVERSION="2022.1")
    ET.SubElement(root, "SYSTEMINFO", ARCH="zynq", DEVICE="7z020", NAME="pynq_mqtt",
                  PACKAGE="clg400", SPEEDGRADE="-1")
    ET.SubElement(root, "EXTERNALPORTS")
    mods = ET.SubElement(root, "MODULES")
    ps = ET.SubElement(mods, "MODULE", FULLNAME="/processing_system7_0",
                       INSTANCE="processing_system7_0", IPTYPE="PERIPHERAL",
                       MODCLASS="PROCESSOR", MODTYPE="processing_system7",
                       VLNV="xilinx.com:ip:processing_system7:5.5")
    params = ET.SubElement(ps, "PARAMETERS")
    for i in range(4):
        ET.SubElement(params, "PARAMETER", NAME=f"PCW_FPGA_FCLK{i}_ENABLE", VALUE="1" if i == 0 else "0")
        for j in range(2):
            ET.SubElement(params, "PARAMETER", NAME=f"PCW_FCLK{i}_PERIPHERAL_DIVISOR{j}", VALUE="5" if j == 0 else "2")
    mm = ET.SubElement(ps, "MEMORYMAP")
    ET.SubElement(mm, "MEMRANGE", ADDRESSBLOCK="reg0", BASENAME="C_BASEADDR",
                  BASEVALUE=f"0x{BASE:08X}", HIGHNAME="C_HIGHADDR",
                  HIGHVALUE=f"0x{BASE + 0xFFFF:08X}", INSTANCE=INSTANCE, IS_DATA="TRUE",
                  IS_INSTRUCTION="TRUE", MASTERBUSINTERFACE="M_AXI_GP0", MEMTYPE="REGISTER",
                  SLAVEBUSINTERFACE="s_axi")
    ET.SubElement(ps, "PORTS")
    ET.SubElement(ps, "BUSINTERFACES")

    ip = ET.SubElement(mods, "MODULE", FULLNAME=f"/{INSTANCE}", INSTANCE=INSTANCE,
                       IPTYPE="PERIPHERAL", MODTYPE="pynq_mqtt_io",
                       VLNV=f"user.org:user:pynq_mqtt_io:{version}")
    params = ET.SubElement(ip, "PARAMETERS")
    for name, value in (("N_INPUTS", 6), ("N_LEDS", 10), ("FIFO_DEPTH", 512), ("CLK_HZ", 100000000)):
        ET.SubElement(params, "PARAMETER", NAME=name, VALUE=str(value))
    blocks = ET.SubElement(ip, "ADDRESSBLOCKS")
    block = ET.SubElement(blocks, "ADDRESSBLOCK", ACCESS="read-write", INTERFACE="s_axi",
                          NAME="reg0", RANGE="65536", USAGE="register")
    xregs = ET.SubElement(block, "REGISTERS")
    for name, r in regs.items():
        reg = ET.SubElement(xregs, "REGISTER", NAME=name)
        prop(reg, "DESCRIPTION", r["desc"])
        prop(reg, "ADDRESS_OFFSET", f"0x{r['offset']:X}")
        prop(reg, "SIZE", 32)
        prop(reg, "ACCESS", r["access"])
        prop(reg, "IS_ENABLED", "true")
        prop(reg, "RESET_VALUE", r["reset"])
        fields = ET.SubElement(reg, "FIELDS")
        for fname, f in r["fields"].items():
            field = ET.SubElement(fields, "FIELD", NAME=fname)
            prop(field, "DESCRIPTION", f["desc"])
            prop(field, "ADDRESS_OFFSET", 0)
            prop(field, "ACCESS", f["access"])
            prop(field, "MODIFIED_WRITE_VALUE", f["mwv"])
            prop(field, "READ_ACTION", f["read_action"])
            prop(field, "BIT_OFFSET", f["bit_offset"])
            prop(field, "BIT_WIDTH", f["bit_width"])
    ET.SubElement(ip, "PORTS")
    ET.SubElement(ip, "BUSINTERFACES")
    return ET.tostring(root, encoding="unicode")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--xsd", help="directory with the IP-XACT 1685-2009 schema (index.xsd)")
    ap.add_argument("--hwh-out", help="also write the .hwh built for PYNQ here")
    args = ap.parse_args()
    failures = []

    def check(ok, msg):
        print(("ok:   " if ok else "FAIL: ") + msg)
        if not ok:
            failures.append(msg)

    root = ET.parse(XML).getroot()
    regs = ipxact_registers(root)
    spec = tomllib.loads(TOML.read_text())
    want = {}
    for r in spec["reg"]:
        if "count" in r:
            for k in range(r["count"]):
                want[f"{r['name']}{k}"] = r["offset"] + k * r["stride"]
        else:
            want[r["name"]] = r["offset"]
    check({n: r["offset"] for n, r in regs.items()} == want,
          f"pynq_mqtt_io_regs.xml parses: {len(regs)} registers at the register map's offsets")

    if args.xsd:
        from lxml import etree
        schema = etree.XMLSchema(etree.parse(str(Path(args.xsd) / "index.xsd")))
        ok = schema.validate(etree.parse(str(XML)))
        check(ok, "pynq_mqtt_io_regs.xml is valid IP-XACT 1685-2009"
              + ("" if ok else f": {schema.error_log.last_error}"))
    else:
        print("skip: no IP-XACT schema given (--xsd); the XML was only parsed")

    version = f"{spec['ip']['version_major']}.{spec['ip']['version_minor']}"
    hwh = build_hwh(regs, version)
    if args.hwh_out:
        Path(args.hwh_out).write_text(hwh)

    from pynq.pl_server.hwh_parser import _HWHZynq
    from pynq.registers import RegisterMap
    import numpy as np

    parsed = _HWHZynq(hwh_data=hwh)
    ip = parsed.ip_dict.get(INSTANCE)
    check(ip is not None, f"PYNQ's hwh parser lists {INSTANCE} in ip_dict")
    if ip is None:
        return 1
    check(ip["phys_addr"] == BASE and ip["addr_range"] == 0x10000,
          f"at 0x{ip['phys_addr']:08X}, {ip['addr_range']} bytes")
    got = ip["registers"]
    check(set(got) == set(want), f"PYNQ reads {len(got)} registers, the map has {len(want)}")
    bad = [n for n in want if n in got and got[n]["address_offset"] != want[n]]
    check(not bad, f"every register at its offset{'' if not bad else ': wrong ' + ', '.join(bad)}")
    bad = [n for n, r in regs.items() if n in got and (
        got[n]["access"] != r["access"]
        or {f: (v["bit_offset"], v["bit_width"], v["access"]) for f, v in got[n]["fields"].items()}
        != {f: (v["bit_offset"], v["bit_width"], v["access"]) for f, v in r["fields"].items()})]
    check(not bad, f"every register's access and fields as described{'' if not bad else ': wrong ' + ', '.join(bad)}")
    evt = got.get("EVT_POP", {}).get("fields", {})
    check(set(evt) == {"SEQ", "INPUT", "SYNTHETIC", "LEVEL", "VALID"}
          and (evt["VALID"]["bit_offset"], evt["SEQ"]["bit_width"]) == (31, 16),
          "EVT_POP: SEQ[15:0] INPUT[23:16] SYNTHETIC LEVEL VALID[31]")

    # the notebook's view: RegisterMap over a register image
    cls = RegisterMap.create_subclass("pynq_mqtt_io", got)
    image = np.zeros(0x10000 // 4, dtype=np.uint32)
    image[want["EVT_POP"] // 4] = 0xC003BEEF
    image[want["VERSION"] // 4] = 0x00020000
    image[want["PARAMS"] // 4] = 0x00090A06
    rm = cls(image)
    ok = (int(rm.EVT_POP.VALID) == 1 and int(rm.EVT_POP.LEVEL) == 1 and int(rm.EVT_POP.INPUT) == 3
          and int(rm.EVT_POP.SEQ) == 0xBEEF and int(rm.VERSION.MINOR) == 2
          and int(rm.PARAMS.N_LEDS) == 10 and int(rm.PARAMS.FIFO_DEPTH_LOG2) == 9)
    check(ok, "PYNQ's RegisterMap decodes EVT_POP, VERSION and PARAMS fields from a register image")
    rm.SCRATCH = 0x12345678
    rm.IRQ_ENABLE.EVENT = 1
    check(image[want["SCRATCH"] // 4] == 0x12345678 and image[want["IRQ_ENABLE"] // 4] == 1,
          "PYNQ's RegisterMap writes SCRATCH and the IRQ_ENABLE.EVENT field")

    print("pynq regmap: " + ("all checks passed" if not failures else f"{len(failures)} failure(s)"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
