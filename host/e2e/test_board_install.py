"""scripts/board-install into a scratch root (DESTDIR), and the overlay loader
(overlays/pynq_mqtt/pynq-mqtt-overlay) against a fake sysfs and a fake PYNQ.

What a board adds that these tests cannot: systemd, udev, the account, PYNQ itself and
the kernel's device-tree overlay code. The unit is checked with systemd-analyze verify,
the config file by the daemon itself, the loader's PYNQ path with a stand-in `pynq`
module that does what Overlay() does to sysfs."""
import hashlib
import os
import re
import shutil
import signal
import stat
import struct
import subprocess

import pytest

from conftest import ROOT, Subscriber

INSTALL = ROOT / "scripts" / "board-install"
LOADER = ROOT / "overlays" / "pynq_mqtt" / "pynq-mqtt-overlay"

FILES = {  # path in the root -> mode
    "usr/local/bin/pynq-mqtt": 0o755,
    "usr/local/sbin/pynq-mqtt-overlay": 0o755,
    "usr/local/share/pynq-mqtt/pynq_mqtt.bit": 0o644,
    "usr/local/share/pynq-mqtt/pynq_mqtt.hwh": 0o644,
    "usr/local/share/pynq-mqtt/pynq_mqtt.dtbo": 0o644,
    "etc/udev/rules.d/60-pynq-mqtt.rules": 0o644,
    "etc/systemd/system/pynq-mqtt.service": 0o644,
    "etc/pynq-mqtt/config.toml": 0o640,
}


def bitstream(part="7z020clg400", body=bytes(range(256)) * 4):
    """A .bit file as Vivado writes it: a header of fields a-d, then e and the data."""
    def field(key, text):
        raw = text.encode() + b"\0"
        return bytes([key]) + struct.pack(">H", len(raw)) + raw
    head = struct.pack(">H", 9) + bytes([0x0F, 0xF0] * 4 + [0]) + struct.pack(">H", 1)
    return (head + field(0x61, "pynq_mqtt_wrapper;UserID=0XFFFFFFFF;Version=2022.1")
            + field(0x62, part) + field(0x63, "2025/01/01") + field(0x64, "12:00:00")
            + b"\x65" + struct.pack(">I", len(body)) + body)


def elf(machine, elf_class):
    """The first bytes of an ELF executable for a machine (0x28 ARM, 0xb7 aarch64)."""
    head = bytearray(64)
    head[0:4] = b"\x7fELF"
    head[4] = elf_class
    head[5] = 1
    head[18] = machine
    return bytes(head)


@pytest.fixture
def kit(tmp_path):
    """What a board owner copies to the board: an ARM binary and the overlay files."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "pynq_mqtt.bit").write_bytes(bitstream())
    (overlay / "pynq_mqtt.hwh").write_text("<MODULES/>\n")
    binary = tmp_path / "pynq-mqtt"
    binary.write_bytes(elf(0x28, 1))
    binary.chmod(0o755)
    return {"overlay": overlay, "bin": binary, "root": tmp_path / "root"}


def install(kit, *args, check=True):
    env = dict(os.environ, DESTDIR=str(kit["root"]))
    r = subprocess.run([str(INSTALL), "--arch", "armv7l", "--bin", str(kit["bin"]),
                        "--overlay-dir", str(kit["overlay"]), *args],
                       env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert r.returncode == 0, r.stdout + r.stderr
    return r


def tree(root):
    """Every file under root: path -> (mode, sha256)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (stat.S_IMODE(p.stat().st_mode),
                                             hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def test_install_puts_every_file_in_place_and_a_second_run_changes_nothing(kit):
    first = install(kit)
    root = kit["root"]
    got = tree(root)
    assert {p: m for p, (m, _) in got.items()} == FILES, got
    share = root / "usr/local/share/pynq-mqtt"
    # side by side, same base name: what PYNQ's Overlay() needs to insert the dtbo
    assert sorted(p.name for p in share.iterdir()) == ["pynq_mqtt.bit", "pynq_mqtt.dtbo", "pynq_mqtt.hwh"]
    assert "." not in str(share.relative_to(root)), "PYNQ derives the .dtbo path by splitting on dots"
    assert (share / "pynq_mqtt.bit").read_bytes() == (kit["overlay"] / "pynq_mqtt.bit").read_bytes()
    dtbo = share / "pynq_mqtt.dtbo"
    assert subprocess.run(["fdtget", str(dtbo), "/fragment@0/__overlay__/pynq_mqtt@43c00000",
                           "linux,uio-name"], capture_output=True, text=True).stdout.strip() == "pynq_mqtt"
    assert "compiled   pynq_mqtt.dtbo" in first.stdout

    second = install(kit)
    assert tree(root) == got, "a second run changed files"
    assert "installed" not in second.stdout, second.stdout
    assert second.stdout.count("unchanged") == 7 and "kept       /etc/pynq-mqtt/config.toml" in second.stdout


def test_the_unit_runs_the_loader_as_root_and_the_daemon_unprivileged(kit):
    install(kit)
    unit = (kit["root"] / "etc/systemd/system/pynq-mqtt.service").read_text()
    keys = dict(re.findall(r"^(\w+)=(.*)$", unit, flags=re.M))
    assert keys["User"] == "pynq-mqtt" and keys["Group"] == "pynq-mqtt"
    assert keys["ExecStartPre"] == "+/usr/local/sbin/pynq-mqtt-overlay load /usr/local/share/pynq-mqtt/pynq_mqtt.bit"
    assert keys["ExecStart"] == "/usr/local/bin/pynq-mqtt run --config /etc/pynq-mqtt/config.toml"
    assert keys["Restart"] == "on-failure"
    assert keys["WantedBy"] == "multi-user.target"
    for after in ("boot_leds.service", "bootpy.service", "network-online.target"):
        assert after in keys["After"].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_unit_passes_systemd_analyze_verify(kit, tmp_path):
    install(kit)
    root = kit["root"]
    # verify checks that the executables exist: point them into the scratch root
    unit = (root / "etc/systemd/system/pynq-mqtt.service").read_text()
    check = tmp_path / "verify" / "pynq-mqtt.service"
    check.parent.mkdir()
    check.write_text(unit.replace("/usr/local/", f"{root}/usr/local/"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no", str(check)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr


def test_the_udev_rule_gives_the_group_the_pynq_mqtt_device(kit):
    install(kit)
    rules = [l for l in (kit["root"] / "etc/udev/rules.d/60-pynq-mqtt.rules").read_text().splitlines()
             if l and not l.startswith("#")]
    assert rules == ['SUBSYSTEM=="uio", ATTR{name}=="pynq_mqtt", GROUP="pynq-mqtt", MODE="0660", '
                     'SYMLINK+="pynq-mqtt"']


def test_broker_option_changes_only_the_broker_line(kit):
    install(kit, "--broker", "mqtt://192.168.2.10:1883")
    conf = kit["root"] / "etc/pynq-mqtt/config.toml"
    assert 'broker = "mqtt://192.168.2.10:1883"' in conf.read_text().splitlines()
    conf.write_text(conf.read_text() + 'prefix = "pynq/lab/"\n')  # the owner's own edit
    r = install(kit, "--broker", "mqtt://broker.lan:1884")
    assert "updated    /etc/pynq-mqtt/config.toml" in r.stdout
    lines = conf.read_text().splitlines()
    assert 'broker = "mqtt://broker.lan:1884"' in lines and 'prefix = "pynq/lab/"' in lines
    assert sum(l.startswith("broker") for l in lines) == 1
    r = install(kit, "--broker", "http://x", check=False)
    assert r.returncode != 0 and "expected mqtt://HOST" in r.stderr


def test_uninstall_removes_everything_but_the_config_and_purge_removes_that(kit):
    install(kit)
    env = dict(os.environ, DESTDIR=str(kit["root"]))
    r = subprocess.run([str(INSTALL), "--uninstall"], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert list(tree(kit["root"])) == ["etc/pynq-mqtt/config.toml"]
    r = subprocess.run([str(INSTALL), "--uninstall", "--purge"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert tree(kit["root"]) == {}
    install(kit)  # and it comes back
    assert set(tree(kit["root"])) == set(FILES)


def test_install_refuses_what_would_not_run_on_the_board(kit, tmp_path):
    kit["bin"].write_bytes(elf(0x3E, 2))  # an x86-64 build
    r = install(kit, check=False)
    assert r.returncode != 0
    assert "is a x86-64 program, but this board (armv7l) needs 32-bit ARM" in r.stderr
    assert "armv7-unknown-linux-gnueabihf" in r.stderr

    kit["bin"].write_bytes(elf(0x28, 1))
    (kit["overlay"] / "pynq_mqtt.bit").write_bytes(bitstream(part="7z010clg400"))
    r = install(kit, check=False)
    assert r.returncode != 0 and "not a bitstream for the PYNQ-Z1/Z2" in r.stderr

    (kit["overlay"] / "pynq_mqtt.bit").unlink()
    r = install(kit, check=False)
    assert r.returncode != 0 and "scripts/build-overlay" in r.stderr
    assert not kit["root"].exists(), "a refused install wrote files"


def test_the_installed_config_is_accepted_by_the_daemon(binary, mosquitto, kit, tmp_path):
    """The daemon rejects unknown keys: run it with the installed file (board and broker
    overridden on the command line), and with every key the file suggests uncommented."""
    install(kit)
    text = (kit["root"] / "etc/pynq-mqtt/config.toml").read_text()
    suggested = re.sub(r"^# (\w+ = \S+)\s+#.*$", r"\1", text, flags=re.M)
    assert suggested.count("\n# ") < text.count("\n# ") - 3, "no suggested keys found"
    for name, variant in (("installed", text), ("suggested", suggested)):
        conf = tmp_path / f"{name}.toml"
        conf.write_text(variant)
        sub = Subscriber(mosquitto, ("#",))
        log = open(tmp_path / f"{name}.log", "w")
        proc = subprocess.Popen([str(binary), "run", "--config", str(conf), "--board", "sim",
                                 "--broker", f"mqtt://127.0.0.1:{mosquitto}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            online = sub.wait_for(lambda m: any(t.endswith("status") and p == b"online" for t, p, _ in m), 30)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            log.close()
            sub.close()
        out = (tmp_path / f"{name}.log").read_text()
        assert online and code == 0, f"{name} config:\n{variant}\n{out}"


# ---- the overlay loader -----------------------------------------------------------------

FAKE_PYNQ = '''
import os, pathlib
class Overlay:
    """What PYNQ's Overlay() leaves behind: the dtbo applied, so the kernel created the
    UIO device and udev its node."""
    def __init__(self, bitfile):
        pathlib.Path(os.environ["FAKE_PYNQ_LOG"]).write_text(bitfile)
        sysfs = pathlib.Path(os.environ["PYNQ_MQTT_SYSFS"])
        uio = sysfs / "class/uio/uio3"
        (uio / "maps/map0").mkdir(parents=True)
        (uio / "name").write_text("pynq_mqtt\\n")
        (uio / "maps/map0/addr").write_text("0x43c00000\\n")
        (uio / "maps/map0/size").write_text("0x00010000\\n")
        overlay = sysfs / "kernel/config/device-tree/overlays/pynq_mqtt"
        overlay.mkdir()
        (overlay / "status").write_text("applied\\n")
        (pathlib.Path(os.environ["PYNQ_MQTT_DEVDIR"]) / "uio3").write_text("")
        self.bitfile_name = bitfile
        self.dtbo = bitfile[:-4] + ".dtbo"
'''


@pytest.fixture
def board(tmp_path, kit):
    """A fake board: sysfs with the device-tree symbols and configfs, /dev, a `pynq`
    module, the installed overlay files."""
    install(kit)
    sysfs = tmp_path / "sys"
    (sysfs / "firmware/devicetree/base/__symbols__").mkdir(parents=True)
    (sysfs / "firmware/devicetree/base/__symbols__/amba").write_text("/axi")
    (sysfs / "firmware/devicetree/base/__symbols__/intc").write_text("/axi/interrupt-controller@f8f01000")
    (sysfs / "kernel/config/device-tree/overlays").mkdir(parents=True)
    (sysfs / "class/uio").mkdir(parents=True)
    (tmp_path / "dev").mkdir()
    (tmp_path / "profile.d").mkdir()
    (tmp_path / "py/pynq").mkdir(parents=True)
    (tmp_path / "py/pynq/__init__.py").write_text(FAKE_PYNQ)
    env = dict(os.environ, PYNQ_MQTT_SYSFS=str(sysfs), PYNQ_MQTT_DEVDIR=str(tmp_path / "dev"),
               PYNQ_MQTT_PROFILE_D=str(tmp_path / "profile.d"), PYNQ_MQTT_FIRMWARE=str(tmp_path / "fw"),
               PYTHONPATH=str(tmp_path / "py"), FAKE_PYNQ_LOG=str(tmp_path / "pynq.log"))
    env.pop("VIRTUAL_ENV", None)
    return {"env": env, "sysfs": sysfs, "bit": kit["root"] / "usr/local/share/pynq-mqtt/pynq_mqtt.bit",
            "tmp": tmp_path}


def loader(board, *args):
    return subprocess.run([str(LOADER), *args], env=board["env"], capture_output=True, text=True, timeout=60)


def test_loader_loads_with_pynq_and_finds_the_uio_device(board):
    r = loader(board, "load", str(board["bit"]))
    assert r.returncode == 0, r.stdout + r.stderr
    assert (board["tmp"] / "pynq.log").read_text() == str(board["bit"])
    assert "loading" in r.stdout and "with PYNQ's Overlay()" in r.stdout
    assert f"ready: {board['tmp']}/dev/uio3 (pynq_mqtt, group" in r.stdout
    # udev did not run here, so the group is not pynq-mqtt: the loader says what to check
    assert "60-pynq-mqtt.rules" in r.stdout
    s = loader(board, "status")
    assert s.returncode == 0, s.stderr
    assert "device-tree overlay: applied" in s.stdout
    assert "register window:     0x43c00000 size 0x00010000" in s.stdout


def test_loader_refuses_missing_files_and_a_kernel_without_overlay_symbols(board):
    bit = board["bit"]
    (bit.parent / "pynq_mqtt.dtbo").rename(bit.parent / "moved.dtbo")
    r = loader(board, "load", str(bit))
    assert r.returncode != 0 and "no " + str(bit.parent / "pynq_mqtt.dtbo") in r.stderr
    (bit.parent / "moved.dtbo").rename(bit.parent / "pynq_mqtt.dtbo")
    (board["sysfs"] / "firmware/devicetree/base/__symbols__/amba").unlink()
    r = loader(board, "load", str(bit))
    assert r.returncode != 0 and "no __symbols__/amba" in r.stderr
    s = loader(board, "status")
    assert s.returncode != 0 and "none named pynq_mqtt" in s.stdout


def test_loader_converts_a_bitstream_for_the_fpga_manager(board):
    body = bytes(range(256)) * 4
    src = board["tmp"] / "x.bit"
    src.write_bytes(bitstream(body=body))
    out = board["tmp"] / "x.bin"
    r = loader(board, "bit2bin", str(src), str(out))
    assert r.returncode == 0, r.stderr
    # each 32-bit word byte-swapped, as PYNQ's bit2bin does
    assert out.read_bytes() == b"".join(body[i:i + 4][::-1] for i in range(0, len(body), 4))
    src.write_bytes(bitstream(part="7z010clg400", body=body))
    r = loader(board, "bit2bin", str(src), str(out))
    assert r.returncode != 0 and "not a PYNQ-Z1/Z2" in r.stderr


def test_loader_without_pynq_programs_through_the_fpga_manager_and_configfs(board):
    """The fallback for a Zynq Linux without PYNQ: .bit -> .bin into the firmware
    directory, the FPGA manager's flags and firmware files, the .dtbo into configfs. A
    thread plays the kernel: it applies the overlay once the dtbo is written."""
    import threading
    import time

    sysfs, tmp = board["sysfs"], board["tmp"]
    fpga = sysfs / "class/fpga_manager/fpga0"
    fpga.mkdir(parents=True)
    (fpga / "flags").write_text("")
    (fpga / "firmware").write_text("")
    (fpga / "state").write_text("operating\n")
    overlays = sysfs / "kernel/config/device-tree/overlays"
    stop = threading.Event()

    def kernel():
        while not stop.is_set():
            dtbo = overlays / "pynq_mqtt" / "dtbo"
            if dtbo.exists() and dtbo.stat().st_size > 0:
                (overlays / "pynq_mqtt" / "status").write_text("applied\n")
                uio = sysfs / "class/uio/uio7"
                uio.mkdir(parents=True)
                (uio / "name").write_text("pynq_mqtt\n")
                (tmp / "dev/uio7").write_text("")
                return
            time.sleep(0.02)

    t = threading.Thread(target=kernel)
    t.start()
    try:
        env = dict(board["env"], PYNQ_MQTT_LOADER="fpga-manager")
        r = subprocess.run([str(LOADER), "load", str(board["bit"])], env=env,
                           capture_output=True, text=True, timeout=60)
    finally:
        stop.set()
        t.join()
    assert r.returncode == 0, r.stdout + r.stderr
    assert "through" in r.stdout and f"ready: {tmp}/dev/uio7" in r.stdout
    body = bytes(range(256)) * 4
    assert (tmp / "fw/pynq_mqtt.bin").read_bytes() == b"".join(body[i:i + 4][::-1] for i in range(0, len(body), 4))
    assert (fpga / "flags").read_text().strip() == "0"
    assert (fpga / "firmware").read_text().strip() == "pynq_mqtt.bin"
    assert (overlays / "pynq_mqtt/dtbo").read_bytes() == (board["bit"].parent / "pynq_mqtt.dtbo").read_bytes()


# ---- the service unit under systemd, and the secrets ----------------------------------

def unit_keys(kit):
    text = (kit["root"] / "etc/systemd/system/pynq-mqtt.service").read_text()
    keys = {}
    for k, v in re.findall(r"^(\w+)=(.*)$", text, flags=re.M):
        keys.setdefault(k, []).append(v)
    return keys


def test_the_unit_waits_for_the_broker_and_the_clock_and_never_gives_up(kit):
    install(kit)
    k = unit_keys(kit)
    # READY=1 comes from the daemon once the broker accepted it; the watchdog from its loop
    assert k["Type"] == ["notify"] and k["NotifyAccess"] == ["main"]
    assert int(k["WatchdogSec"][0]) > 0
    # no RTC on a PYNQ: TLS certificates are "not yet valid" until the clock is synced
    assert "time-sync.target" in k["After"][0].split() and "time-sync.target" in k["Wants"][0].split()
    # a refused CONNACK or a TLS time error at start exits 1: retried forever, slowly
    assert k["StartLimitIntervalSec"] == ["0"] and k["Restart"] == ["on-failure"]
    assert int(k["RestartSec"][0]) >= 30
    # 75 (device gone) restarts; 78 (another bitstream: a notebook owns the PL) does not
    assert k["RestartPreventExitStatus"] == ["78"]
    # the sandbox the issue asks for, and the loader still runs as root before the daemon
    assert k["CapabilityBoundingSet"] == [""] and k["DevicePolicy"] == ["closed"]
    assert k["DeviceAllow"] == ["char-uio rw"] and k["MemoryMax"]
    assert set(k["RestrictAddressFamilies"][0].split()) == {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert k["ExecStartPre"][0].startswith("+/usr/local/sbin/pynq-mqtt-overlay load ")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_security_scores_the_unit_at_most_2_5(kit):
    """What scripts/test runs on the installed unit (it was 7.8 EXPOSED before)."""
    install(kit)
    unit = kit["root"] / "etc/systemd/system/pynq-mqtt.service"
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--no-pager", str(unit)],
                       capture_output=True, text=True, timeout=60)
    m = re.search(r"Overall exposure level for pynq-mqtt.service: ([0-9.]+)", r.stdout)
    assert m, r.stdout + r.stderr
    assert float(m.group(1)) <= 2.5, r.stdout


def test_secrets_are_installed_0640_root_pynq_mqtt_and_the_config_points_at_them(kit, tmp_path):
    # a board image at DESTDIR: its /etc/group has the daemon's group
    (kit["root"] / "etc").mkdir(parents=True)
    (kit["root"] / "etc/group").write_text("root:x:0:\npynq-mqtt:x:4242:\n")
    src = tmp_path / "secrets"
    src.mkdir()
    for name, text in (("pw", "S3cr3t-pa55\n"), ("key.pem", "-----BEGIN PRIVATE KEY-----\n"),
                       ("cert.pem", "-----BEGIN CERTIFICATE-----\n"), ("ca.pem", "-----BEGIN CERTIFICATE-----\n")):
        (src / name).write_text(text)
        (src / name).chmod(0o644)  # as a user copies them: readable by all
    install(kit, "--username", "board1", "--password-file", str(src / "pw"), "--client-key",
            str(src / "key.pem"), "--client-cert", str(src / "cert.pem"), "--ca-file", str(src / "ca.pem"))
    conf = kit["root"] / "etc/pynq-mqtt"
    for name, mode in (("password", 0o640), ("client.key", 0o640), ("client.crt", 0o644), ("ca.crt", 0o644)):
        st = (conf / name).stat()
        assert stat.S_IMODE(st.st_mode) == mode, name
        if mode == 0o640:
            assert (st.st_uid, st.st_gid) == (0, 4242), name
    assert (conf / "password").read_text() == "S3cr3t-pa55\n"
    lines = (conf / "config.toml").read_text().splitlines()
    for line in ('username = "board1"', 'password_file = "/etc/pynq-mqtt/password"',
                 'client_key = "/etc/pynq-mqtt/client.key"', 'client_cert = "/etc/pynq-mqtt/client.crt"',
                 'ca_file = "/etc/pynq-mqtt/ca.crt"'):
        assert lines.count(line) == 1, line
    # a second run changes nothing and adds no second line
    again = install(kit, "--username", "board1", "--password-file", str(src / "pw"))
    assert "installed  /" not in again.stdout and "updated  " not in again.stdout, again.stdout
    assert (conf / "config.toml").read_text().splitlines() == lines


def test_secret_options_that_cannot_work_are_refused(kit, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x\n")
    r = install(kit, "--password-file", str(pw), check=False)
    assert r.returncode != 0 and "--username" in r.stderr
    r = install(kit, "--client-key", str(pw), check=False)
    assert r.returncode != 0 and "go together" in r.stderr
    r = install(kit, "--username", "u", "--password-file", str(tmp_path / "missing"), check=False)
    assert r.returncode != 0 and "no such file" in r.stderr


# ---- --base: PYNQ's stock base overlay ------------------------------------------------

def test_base_installs_the_daemon_for_the_base_overlay_without_an_overlay(binary, mosquitto, kit, tmp_path):
    r = install(kit, "--base")
    root = kit["root"]
    got = {p: m for p, (m, _) in tree(root).items()}
    assert got == {"usr/local/bin/pynq-mqtt": 0o755, "etc/udev/rules.d/60-pynq-mqtt.rules": 0o644,
                   "etc/systemd/system/pynq-mqtt.service": 0o644, "etc/pynq-mqtt/config.toml": 0o640}, got
    k = unit_keys(kit)
    # /dev/mem as PYNQ maps it: root, with that capability and device only; no loader
    assert k["User"] == ["root"] and k["Group"] == ["pynq-mqtt"]
    assert "ExecStartPre" not in k
    assert k["CapabilityBoundingSet"] == ["CAP_SYS_RAWIO"]
    assert sorted(k["DeviceAllow"]) == ["/dev/mem rw", "char-uio rw"] and k["DevicePolicy"] == ["closed"]
    assert k["RestartPreventExitStatus"] == ["78"], "another bitstream: stay stopped"
    rules = [l for l in (root / "etc/udev/rules.d/60-pynq-mqtt.rules").read_text().splitlines()
             if l and not l.startswith("#")]
    assert rules == ['SUBSYSTEM=="uio", ATTR{name}=="fabric", GROUP="pynq-mqtt", MODE="0660"',
                     'SUBSYSTEM=="uio", ATTR{name}=="pynq_base_regs", GROUP="pynq-mqtt", MODE="0660"']
    text = (root / "etc/pynq-mqtt/config.toml").read_text()
    assert 'board = "base"' in text and "soft_debounce_us = 5000" in text
    again = install(kit, "--base")
    assert "installed  /" not in again.stdout and again.stdout.count("unchanged") == 3, again.stdout
    # the daemon takes the file (on the models of the base overlay instead of /dev/mem),
    # with the suggested keys uncommented too
    suggested = re.sub(r"^# (\w+ = \S+)\s+#.*$", r"\1", text, flags=re.M)
    for name, variant in (("installed", text), ("suggested", suggested)):
        conf = tmp_path / f"{name}.toml"
        conf.write_text(variant)
        sub = Subscriber(mosquitto, ("#",))
        log = open(tmp_path / f"{name}.log", "w")
        proc = subprocess.Popen([str(binary), "run", "--config", str(conf), "--board", "base-sim",
                                 "--base-regs", "devmem", "--broker", f"mqtt://127.0.0.1:{mosquitto}"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            online = sub.wait_for(lambda m: any(t.endswith("status") and p == b"online" for t, p, _ in m), 30)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=30)
            log.close()
            sub.close()
        out = (tmp_path / f"{name}.log").read_text()
        assert online and code == 0, f"{name} config:\n{variant}\n{out}"
    assert r.returncode == 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_the_base_unit_passes_systemd_analyze_verify(kit, tmp_path):
    install(kit, "--base")
    root = kit["root"]
    unit = (root / "etc/systemd/system/pynq-mqtt.service").read_text()
    check = tmp_path / "verify" / "pynq-mqtt.service"
    check.parent.mkdir()
    check.write_text(unit.replace("/usr/local/", f"{root}/usr/local/"))
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", "--recursive-errors=no", str(check)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stderr.strip(), r.stderr
