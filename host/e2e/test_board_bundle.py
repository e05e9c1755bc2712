"""The board bundle of scripts/package, as a board owner gets it (README, "On a real
board", step 3): checksums, the two stripped board binaries and the glibc they need,
the armv7 binary running under qemu-user, and scripts/board-install installing it.

The bundle is the one scripts/test builds (PYNQ_MQTT_BUNDLE), else the newest in dist/;
without one these tests fail and say how to build it (they are not skipped)."""
import os
import re
import shutil
import subprocess
import tarfile

import pytest

from conftest import ROOT
from test_board_install import FILES, bitstream, tree

# PYNQ v3.0/v3.1 images are Ubuntu 22.04: glibc 2.35
GLIBC_MAX = (2, 35)
BINARIES = {  # triple -> (ELF class, machine, qemu)
    "armv7-unknown-linux-gnueabihf": (1, 0x28, "qemu-arm-static"),
    "aarch64-unknown-linux-gnu": (2, 0xB7, "qemu-aarch64-static"),
}


def bundle_path():
    env = os.environ.get("PYNQ_MQTT_BUNDLE")
    if env:
        return env
    found = sorted((ROOT / "dist").glob("pynq-mqtt-*.tar.gz"), key=os.path.getmtime)
    assert found, "no board bundle: run scripts/package (scripts/test does) or set PYNQ_MQTT_BUNDLE"
    return found[-1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    """The bundle unpacked in a scratch directory: its top folder."""
    dest = tmp_path_factory.mktemp("bundle")
    with tarfile.open(bundle_path()) as t:
        t.extractall(dest, filter="data")
    tops = list(dest.iterdir())
    assert len(tops) == 1 and tops[0].name.startswith("pynq-mqtt-"), tops
    return tops[0]


def glibc_needed(path):
    """The newest GLIBC_x.y version an ELF file needs, as a tuple, or None."""
    out = subprocess.run(["readelf", "--version-info", "--wide", str(path)],
                         capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(x) for x in v.split(".")) for v in re.findall(r"GLIBC_(\d+(?:\.\d+)+)", out)}
    return max(versions) if versions else None


def test_checksums_version_and_contents(bundle):
    r = subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=bundle,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    listed = {line.split(None, 1)[1].strip() for line in (bundle / "SHA256SUMS").read_text().splitlines()}
    present = {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()} - {"SHA256SUMS"}
    assert listed == present, f"not summed: {present - listed}; summed but missing: {listed - present}"
    for rel in ("scripts/board-install", "overlays/pynq_mqtt/pynq-mqtt-overlay",
                "overlays/pynq_mqtt/pynq_mqtt.dtso", "overlays/pynq_mqtt/out/pynq_mqtt.dtbo",
                "VERSION", "README"):
        assert (bundle / rel).is_file(), rel
    version = (bundle / "VERSION").read_text().strip()
    assert bundle.name == f"pynq-mqtt-{version}"
    commit = re.search(r"\+g([0-9a-f]+)", version)
    assert commit, f"no git commit in the version {version!r}"
    r = subprocess.run(["git", "rev-parse", "--verify", "--quiet", commit.group(1) + "^{commit}"],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, f"the bundle's commit {commit.group(1)} is not in this repository"


@pytest.mark.parametrize("triple", sorted(BINARIES))
def test_binaries_are_stripped_board_programs_within_the_boards_glibc(bundle, triple):
    path = bundle / "bin" / triple / "pynq-mqtt"
    head = path.read_bytes()[:20]
    elf_class, machine, _ = BINARIES[triple]
    assert head[:4] == b"\x7fELF" and head[4] == elf_class and head[18] == machine, head
    sections = subprocess.run(["readelf", "-S", "--wide", str(path)], capture_output=True,
                              text=True, check=True).stdout
    assert ".symtab" not in sections and ".debug_info" not in sections, "not stripped"
    need = glibc_needed(path)
    assert need is not None, "no glibc version needs found: is it a dynamic glibc program?"
    assert need <= GLIBC_MAX, f"{triple} needs GLIBC_{'.'.join(map(str, need))}, the boards have 2.35"


def test_the_glibc_check_sees_a_symbol_newer_than_the_boards(tmp_path):
    """The check above can fail: arc4random is new in glibc 2.36 (Debian 12's)."""
    src = tmp_path / "new.c"
    src.write_text("#include <stdlib.h>\nint main(void) { return (int)(arc4random() & 1); }\n")
    exe = tmp_path / "new"
    subprocess.run(["arm-linux-gnueabihf-gcc", "-o", str(exe), str(src)], check=True)
    assert glibc_needed(exe) == (2, 36)
    assert glibc_needed(exe) > GLIBC_MAX


@pytest.mark.parametrize("triple", sorted(BINARIES))
def test_the_board_binaries_run_under_qemu_user(bundle, triple):
    """Each runs on its instruction set (qemu-user, the targets' multiarch C library),
    and on a machine without the overlay, says so in one line."""
    qemu = BINARIES[triple][2]
    exe = bundle / "bin" / triple / "pynq-mqtt"
    r = subprocess.run([qemu, str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("pynq-mqtt "), r.stdout + r.stderr
    r = subprocess.run([qemu, str(exe), "run", "--board", "uio", "--broker", "mqtt://127.0.0.1:9"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    errors = [l for l in r.stderr.splitlines() if "error" in l.lower()]
    assert len(errors) == 1 and errors[0].startswith("pynq-mqtt: error: "), r.stderr
    assert "panicked" not in r.stderr, r.stderr
    # the one line names what is missing: without a Zynq FPGA manager there is no
    # board at all (and the line says to try the simulator), else the UIO device
    low = errors[0].lower()
    if os.path.exists("/sys/class/fpga_manager/fpga0"):
        assert "uio" in low, r.stderr
    else:
        assert "no pynq board here" in low and "pynq-mqtt sim" in low, r.stderr


def test_board_install_installs_the_bundle(bundle, tmp_path):
    """Step 5 of the README on the unpacked bundle: the board's own binary, chosen by its
    architecture, with the overlay files (the bitstream added as scripts/build-overlay
    leaves it) and no --bin or --overlay-dir."""
    board = tmp_path / "board"
    shutil.copytree(bundle, board)
    out = board / "overlays/pynq_mqtt/out"
    if not (out / "pynq_mqtt.bit").exists():
        (out / "pynq_mqtt.bit").write_bytes(bitstream())
        (out / "pynq_mqtt.hwh").write_text("<MODULES/>\n")
    for arch, triple, extra in [("armv7l", "armv7-unknown-linux-gnueabihf", []),
                                ("aarch64", "aarch64-unknown-linux-gnu", ["--no-overlay"])]:
        root = tmp_path / f"root-{arch}"
        r = subprocess.run([str(board / "scripts/board-install"), "--arch", arch, *extra],
                           env=dict(os.environ, DESTDIR=str(root)), capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        got = tree(root)
        assert got["usr/local/bin/pynq-mqtt"][1] == tree(board / "bin" / triple)["pynq-mqtt"][1], \
            f"{arch}: installed a binary other than bin/{triple}/pynq-mqtt"
        if not extra:
            assert set(got) == set(FILES), set(got) ^ set(FILES)
            assert got["usr/local/share/pynq-mqtt/pynq_mqtt.dtbo"][1] == \
                tree(out)["pynq_mqtt.dtbo"][1], "the bundle's compiled .dtbo was not the one installed"
