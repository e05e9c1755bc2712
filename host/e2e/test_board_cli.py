"""`pynq-mqtt doctor`, `regs` and `run --board uio` as a user runs them: on the
simulated board (the Verilated RTL) with a real mosquitto, and on a fake UIO board (a
sysfs tree laid out as the kernel does it, a file standing in for /dev/uioN) through
the binary's hidden --sysfs-root/--dev-dir/--proc-root options."""
import pathlib
import re
import struct
import subprocess
import tomllib

import pytest

from conftest import ROOT, free_port

# the register map's version, as the daemon under test was built with it
_IP = tomllib.loads((ROOT / "hdl/regmap/pynq_mqtt_io.toml").read_text())["ip"]
VERSION_MAJOR, VERSION_MINOR = _IP["version_major"], _IP["version_minor"]

ID = 0x504D5154
CHECKS = ["settings", "board", "map", "identity", "interrupt", "LEDs", "realtime", "broker"]


def run(binary, *args, timeout=60, env=None):
    return subprocess.run([str(binary), *args], capture_output=True, text=True,
                          timeout=timeout, env={"PATH": "/usr/bin:/bin", **(env or {})})


def check_lines(stdout):
    """{check name: (mark, text)} of doctor's output."""
    out = {}
    for line in stdout.splitlines():
        m = re.match(r"^([✓✗!-]) (\S+)\s+(.*)$", line)
        if m:
            out[m.group(2)] = (m.group(1), m.group(3))
    return out


def register_names():
    """Every register name of docs/registers.md (arrays expanded)."""
    names = []
    for line in (ROOT / "docs/registers.md").read_text().splitlines():
        m = re.match(r"^\| `0x[0-9A-F]+`(?:\.\.`0x[0-9A-F]+`)? \| (\w+?)(\d+)?(?:\.\.(\d+))? \|", line)
        if not m:
            continue
        if m.group(3):
            names += [f"{m.group(1)}{i}" for i in range(int(m.group(2)), int(m.group(3)) + 1)]
        else:
            names.append(m.group(1) + (m.group(2) or ""))
    assert len(names) > 20, names
    return names


@pytest.mark.release
def test_doctor_on_the_simulated_board_passes_every_check(binary, mosquitto, tmp_path):
    r = run(binary, "doctor", "--board", "sim", "--broker", f"mqtt://127.0.0.1:{mosquitto}")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = check_lines(r.stdout)
    assert list(lines) == CHECKS, r.stdout
    for name, (mark, text) in lines.items():
        assert mark == "✓", f"{name}: {text}"
    assert f"pynq_mqtt_io {VERSION_MAJOR}.{VERSION_MINOR}" in lines["identity"][1]
    assert "with the event generator" in lines["identity"][1]
    assert "generated press" in lines["interrupt"][1]
    assert "restored to 0000" in lines["LEDs"][1]
    assert "accepted an MQTT connection" in lines["broker"][1]
    # root here: the drain's default real-time priority is allowed
    assert "the event drain may run SCHED_FIFO 10" in lines["realtime"][1]
    assert f"all {len(CHECKS)} checks passed" in r.stdout
    # doctor reads rt_priority from the config file `run` would use
    conf = tmp_path / "c.toml"
    conf.write_text("rt_priority = 0\n")
    off = check_lines(run(binary, "doctor", "--config", str(conf), "--board", "sim",
                          "--broker", f"mqtt://127.0.0.1:{mosquitto}").stdout)
    assert off["realtime"] == ("✓", "off (rt_priority = 0): the event drain runs at normal priority"), off
    # ...and from the environment, though doctor has no --rt-priority: the variable
    # beats the file, as it does for `run`
    broker = ("--broker", f"mqtt://127.0.0.1:{mosquitto}")
    conf.write_text("rt_priority = 5\n")
    env_off = check_lines(run(binary, "doctor", "--config", str(conf), "--board", "sim", *broker,
                              env={"PYNQ_MQTT_RT_PRIORITY": "0"}).stdout)
    assert env_off["realtime"] == off["realtime"], env_off
    file_5 = check_lines(run(binary, "doctor", "--config", str(conf), "--board", "sim", *broker).stdout)
    assert file_5["realtime"] == ("✓", "the event drain may run SCHED_FIFO 5"), file_5
    # a bad variable fails the settings check in the daemon's own words
    bad = run(binary, "doctor", "--board", "sim", *broker, env={"PYNQ_MQTT_RT_PRIORITY": "ten"})
    assert bad.returncode != 0
    settings = check_lines(bad.stdout).get("settings")
    want = 'environment variable PYNQ_MQTT_RT_PRIORITY: expected a whole number, found "ten"'
    assert settings and settings[0] == "✗" and want in settings[1], bad.stdout + bad.stderr


def test_doctor_names_the_fix_when_the_broker_is_down(binary):
    port = free_port()  # nothing listens there
    r = run(binary, "doctor", "--board", "sim", "--broker", f"mqtt://127.0.0.1:{port}")
    assert r.returncode != 0
    lines = check_lines(r.stdout)
    mark, text = lines["broker"]
    assert mark == "✗" and f"127.0.0.1:{port}" in text and "fix: start the broker" in text, text
    assert all(m == "✓" for n, (m, _) in lines.items() if n != "broker"), r.stdout
    assert f"1 of {len(CHECKS)} checks failed" in r.stderr


def test_regs_dumps_every_register_of_the_simulated_board(binary):
    # the shape the binary says it was built with (`sim --help`), as the RTL reports it
    shape = re.search(r"Simulated board of this build: (\d+) inputs, (\d+) LEDs\.",
                      run(binary, "sim", "--help").stdout)
    assert shape, "sim --help names no shape"
    n_inputs, n_leds = int(shape[1]), int(shape[2])
    r = run(binary, "regs", "--board", "sim")
    assert r.returncode == 0, r.stderr
    rows = {}
    for line in r.stdout.splitlines()[2:]:
        f = line.split(None, 4)
        rows[f[1]] = f
    assert list(rows) == register_names()
    assert rows["ID"][3] == f"{ID:#010x}"
    assert rows["VERSION"][4] == f"MINOR={VERSION_MINOR} MAJOR={VERSION_MAJOR}"
    assert rows["PARAMS"][4].startswith(f"N_INPUTS={n_inputs} N_LEDS={n_leds} ")
    assert rows["EVT_POP"][3] == "-" and "not read" in rows["EVT_POP"][4]
    assert rows["LED_TOGGLE"][3] == "-" and rows["LED_TOGGLE"][4] == "write only"
    assert rows["INPUT_ENABLE"][3] == f"{(1 << n_inputs) - 1:#010x}", "reset value: every implemented input"


# ---- a fake UIO board ---------------------------------------------------------------


# The registers start this far into the fake map0 (sysfs maps/map0/offset): a file that
# stands in for /dev/uio4 takes the daemon's 4-byte interrupt re-arm write at its file
# position, which must not land on a register.
BASE = 0x100


def fake_board(tmp, name="pynq_mqtt", id_value=ID, bound=True, driver=True, with_uio=True,
               xilinx_kernel=True):
    """The sysfs a PYNQ shows with the overlay loaded, and /dev/uio4 as a file."""
    sys_ = tmp / "sys"
    dev = tmp / "dev"
    proc = tmp / "proc"
    for d in (sys_ / "class/uio", sys_ / "bus/platform/devices", dev, proc,
              sys_ / "class/fpga_manager/fpga0"):
        d.mkdir(parents=True, exist_ok=True)
    (sys_ / "class/fpga_manager/fpga0/state").write_text("operating\n")
    # a PYNQ image's kernel: the Xilinx FPGA manager files and clk_ignore_unused
    if xilinx_kernel:
        (sys_ / "class/fpga_manager/fpga0/firmware").write_text("\n")
        (sys_ / "class/fpga_manager/fpga0/flags").write_text("0\n")
        (proc / "cmdline").write_text("console=ttyPS0,115200 root=/dev/mmcblk0p2 rw "
                                      "clk_ignore_unused uio_pdrv_genirq.of_id=generic-uio\n")
    drv = sys_ / "bus/platform/drivers/uio_pdrv_genirq"
    if driver:
        drv.mkdir(parents=True)
    node = sys_ / "devices/platform/43c00000.pynq-mqtt-io"
    (node / "of_node").mkdir(parents=True)
    (node / "of_node/linux,uio-name").write_bytes(name.encode() + b"\0")
    (sys_ / "bus/platform/devices/43c00000.pynq-mqtt-io").symlink_to(node)
    if bound:
        (node / "driver").symlink_to(drv)
    if with_uio:
        uio = sys_ / "class/uio/uio4"
        (uio / "maps/map0").mkdir(parents=True)
        (uio / "name").write_text(name + "\n")
        (uio / "device").symlink_to(node)
        for k, v in (("addr", "0x43c00000"), ("size", "0x00010000"), ("offset", hex(BASE))):
            (uio / "maps/map0" / k).write_text(v + "\n")
        regs = bytearray(0x10000)
        for off, v in ((0x00, id_value), (0x04, VERSION_MAJOR << 24 | VERSION_MINOR << 16), (0x0C, 0x000A_0404),
                       (0x10, 100_000_000), (0x80, 0b0110)):
            struct.pack_into("<I", regs, BASE + off, v)
        (dev / "uio4").write_bytes(bytes(regs))
    return ["--sysfs-root", str(sys_), "--dev-dir", str(dev), "--proc-root", str(proc)]


def one_error_line(r):
    """The one line that says what is wrong (log lines may come before it)."""
    assert r.returncode != 0
    lines = [l for l in r.stderr.splitlines() if "error" in l.lower()]
    assert len(lines) == 1 and lines[0].startswith("pynq-mqtt: error: "), r.stderr
    return lines[0]


def test_regs_reads_a_uio_board_by_name(binary, tmp_path):
    paths = fake_board(tmp_path)
    r = run(binary, "regs", "--board", "uio", *paths)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"uio:{tmp_path}/dev/uio4 (pynq_mqtt): ID 0x504d5154")
    led = next(l for l in r.stdout.splitlines() if l.split()[1] == "LED")
    assert led.split()[3] == "0x00000006"
    # regs opens read-only: the "device" is unchanged
    data = (tmp_path / "dev/uio4").read_bytes()
    assert data[:BASE] == bytes(BASE) and struct.unpack_from("<I", data, BASE)[0] == ID


def test_regs_refuses_another_ip(binary, tmp_path):
    paths = fake_board(tmp_path, id_value=0xDEADBEEF)
    line = one_error_line(run(binary, "regs", "--board", "uio", *paths))
    assert "0xdeadbeef" in line and "--force" in line
    r = run(binary, "regs", "--board", "uio", "--force", *paths)
    assert r.returncode == 0 and "0xdeadbeef" in r.stdout


def test_run_on_uio_names_cause_and_fix_in_one_line(binary, tmp_path):
    cases = [
        (dict(with_uio=False, bound=False, driver=False), ["uio_pdrv_genirq", "of_id=generic-uio"]),
        (dict(with_uio=False, bound=False), ["not bound", "of_id=generic-uio"]),
        (dict(name="fabric"), ["no UIO device named \"pynq_mqtt\"", "uio4 \"fabric\"", "load the overlay"]),
        (dict(id_value=0x12345678), ["0x12345678", "load the pynq_mqtt overlay"]),
    ]
    for k, (kw, words) in enumerate(cases):
        paths = fake_board(tmp_path / str(k), **kw)
        line = one_error_line(run(binary, "run", "--board", "uio", "--stats-interval", "0", *paths))
        for w in words:
            assert w in line, f"case {k}: {w!r} not in {line!r}"


def test_doctor_on_a_uio_board_without_the_overlay(binary, tmp_path):
    paths = fake_board(tmp_path, name="fabric")
    r = run(binary, "doctor", "--board", "uio", "--broker", f"mqtt://127.0.0.1:{free_port()}", *paths)
    assert r.returncode != 0
    lines = check_lines(r.stdout)
    assert lines["fpga"][0] == "✓"
    assert lines["driver"][0] == "✓"
    mark, text = lines["device"]
    assert mark == "✗" and "load the overlay" in text, text
    for later in ("map", "access", "identity", "interrupt", "LEDs"):
        assert lines[later][0] == "-", r.stdout


def test_doctor_checks_what_the_loader_without_pynq_needs_of_the_kernel(binary, tmp_path):
    """pynq-mqtt-overlay's fallback (no PYNQ) needs clk_ignore_unused and the Xilinx
    kernel's fpga_manager files; a PYNQ image has both, a mainline kernel neither."""
    paths = fake_board(tmp_path / "pynq", name="fabric")
    r = run(binary, "doctor", "--board", "uio", "--broker", f"mqtt://127.0.0.1:{free_port()}", *paths)
    mark, text = check_lines(r.stdout)["loader"]
    assert mark == "✓" and "clk_ignore_unused" in text, r.stdout
    paths = fake_board(tmp_path / "mainline", name="fabric", xilinx_kernel=False)
    (tmp_path / "mainline/proc/cmdline").write_text("console=ttyPS0,115200 root=/dev/mmcblk0p2\n")
    r = run(binary, "doctor", "--board", "uio", "--broker", f"mqtt://127.0.0.1:{free_port()}", *paths)
    mark, text = check_lines(r.stdout)["loader"]
    assert mark == "✗", r.stdout
    assert "clk_ignore_unused is not on the kernel command line" in text, text
    assert "not a Xilinx (linux-xlnx) kernel" in text, text



def test_a_second_daemon_is_told_who_holds_the_device(binary, tmp_path):
    import fcntl
    import os
    paths = fake_board(tmp_path)
    paths = paths[:-2]  # the real /proc: it names the lock's holder
    with open(tmp_path / "dev/uio4", "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        line = one_error_line(run(binary, "run", "--board", "uio", *paths))
        assert f"in use by pid {os.getpid()}" in line and "stop it first" in line, line

        # doctor still looks (read-only) and says what it could not do
        r = run(binary, "doctor", "--board", "uio", "--broker", f"mqtt://127.0.0.1:{free_port()}", *paths)
        lines = check_lines(r.stdout)
        assert lines["access"][0] == "✗" and f"pid {os.getpid()}" in lines["access"][1], r.stdout
        assert lines["identity"][0] == "✓", r.stdout
        assert lines["interrupt"][0] == "-" and lines["LEDs"][0] == "-", r.stdout

        # regs does not need the lock
        assert run(binary, "regs", "--board", "uio", *paths).returncode == 0
