#!/usr/bin/env python3
"""docs/extending.md, applied: the guide's own code blocks are applied to a scratch copy
of the tree and its own commands run there, so the guide cannot rot.

The guide marks what is applied with an HTML comment on the line before a fenced block:

    <!-- extend: create PATH -->                 the block is the new file PATH
    <!-- extend: insert PATH before "ANCHOR" --> the block goes before the one line of
                                                 PATH that starts with ANCHOR
    <!-- extend: run -->                         each line of the block is a command,
                                                 run with bash in the scratch tree

The scratch tree, target/extending-guide/tree/ of this checkout (left there after a run,
for a look), is a fresh copy of hdl/, host/, benches/, docs/ and the workspace's Cargo
files (host/sim's build script Verilates ../../hdl/rtl, relative to its manifest), with
.venv linked in. Cargo builds into target/extending-guide/, so the registry crates stay
compiled between runs. The tree is always at the same place and every file in it is
newer than the last build: cargo decides whether to re-run Verilator from the absolute
paths and times of the RTL files the last build script run read, so a tree at a new
place (or with copied times) could leave a stale model in place.

    .venv/bin/python -m pytest -q hdl/tb/test_extending_guide.py   # the test
    .venv/bin/python hdl/tb/test_extending_guide.py DIR   # apply the guide's edits to DIR only
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "extending.md"
COPIED = ["hdl", "host", "benches", "docs", "Cargo.toml", "Cargo.lock"]
SCRATCH = ROOT / "target" / "extending-guide"  # the tree and cargo's builds
IGNORED = shutil.ignore_patterns("sim_build*", "__pycache__", "build", "*.fst", "results*.xml")

MARK = re.compile(r"^<!-- extend: (.*?) -->$")
INSERT = re.compile(r'^insert (\S+) before "(.*)"$')
CREATE = re.compile(r"^create (\S+)$")
FENCE = re.compile(r"^```")


@dataclass
class Block:
    line: int  # of the marker in the guide, for messages
    action: str  # "create", "insert" or "run"
    text: str
    path: str = ""
    anchor: str = ""


def blocks(guide: str) -> list[Block]:
    """Every marked block of the guide, in order; a marker must precede a fenced block."""
    lines = guide.split("\n")
    found = []
    for n, line in enumerate(lines):
        m = MARK.match(line)
        if not m:
            continue
        where = f"{GUIDE.name}:{n + 1}"
        assert n + 1 < len(lines) and FENCE.match(lines[n + 1]), f"{where}: no code block after the marker"
        end = next((k for k in range(n + 2, len(lines)) if lines[k] == "```"), None)
        assert end is not None, f"{where}: the code block does not end"
        text = "\n".join(lines[n + 2 : end]) + "\n"
        spec = m.group(1)
        if spec == "run":
            found.append(Block(n + 1, "run", text))
        elif c := CREATE.match(spec):
            found.append(Block(n + 1, "create", text, c.group(1)))
        elif i := INSERT.match(spec):
            found.append(Block(n + 1, "insert", text, i.group(1), i.group(2).replace('\\"', '"')))
        else:
            raise AssertionError(f"{where}: unknown marker {spec!r}")
    return found


def apply(tree: Path, edits: list[Block]) -> None:
    """Applies the create and insert blocks to tree."""
    for b in edits:
        where = f"{GUIDE.name}:{b.line}"
        path = tree / b.path
        if b.action == "create":
            assert not path.exists(), f"{where}: {b.path} exists already"
            path.write_text(b.text)
        elif b.action == "insert":
            assert path.is_file(), f"{where}: no file {b.path}"
            lines = path.read_text().splitlines(keepends=True)
            hits = [k for k, line in enumerate(lines) if line.startswith(b.anchor)]
            assert len(hits) == 1, (
                f"{where}: the anchor {b.anchor!r} starts {len(hits)} lines of {b.path}, not one"
            )
            lines[hits[0] : hits[0]] = [b.text]
            path.write_text("".join(lines))


def copy_tree(dest: Path) -> None:
    """A copy of what the guide's steps need, every file stamped now (see above)."""
    dest.mkdir(parents=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=IGNORED, symlinks=True,
                            copy_function=shutil.copy)
        else:
            shutil.copy(src, dest / name)
    (dest / ".venv").symlink_to((ROOT / ".venv").resolve())


GUIDE_BLOCKS = blocks(GUIDE.read_text())
RUNS = [b for b in GUIDE_BLOCKS if b.action == "run"]


@pytest.fixture(scope="module")
def tree() -> Path:
    dest = SCRATCH / "tree"
    shutil.rmtree(dest, ignore_errors=True)
    copy_tree(dest)
    apply(dest, [b for b in GUIDE_BLOCKS if b.action != "run"])
    return dest


def test_guide_has_every_step() -> None:
    """The guide edits the toml, the RTL, both benches, and runs what checks them."""
    paths = {b.path for b in GUIDE_BLOCKS if b.action != "run"}
    assert "hdl/regmap/pynq_mqtt_io.toml" in paths
    assert "hdl/rtl/pynq_mqtt_io.v" in paths
    assert any(p.startswith("hdl/rtl/") and p.endswith(".v") and p != "hdl/rtl/pynq_mqtt_io.v" for p in paths)
    assert any(p.startswith("hdl/tb/test_top_") for p in paths)
    assert any(p.startswith("host/sim/tests/") for p in paths)
    commands = "".join(b.text for b in RUNS)
    for needed in ("regmap.py", "lint.sh", "pytest", "cargo test"):
        assert needed in commands, f"the guide never runs {needed}"


def test_guide_changes_the_tree(tree: Path) -> None:
    """The toml edit is not in this tree already (else the scratch tree proves nothing)."""
    name = re.search(r'^name = "(\w+)"', next(
        b.text for b in GUIDE_BLOCKS if b.path == "hdl/regmap/pynq_mqtt_io.toml"), re.M).group(1)
    assert f'"{name}"' not in (ROOT / "hdl/regmap/pynq_mqtt_io.toml").read_text()
    assert f'"{name}"' in (tree / "hdl/regmap/pynq_mqtt_io.toml").read_text()


@pytest.mark.parametrize("step", RUNS, ids=[f"line{b.line}" for b in RUNS])
def test_guide_step(tree: Path, step: Block) -> None:
    """Each command block of the guide succeeds in the scratch tree, in order."""
    env = dict(os.environ)
    env.pop("PMQ_RTL", None)  # the scratch tree's own RTL
    env["CARGO_TARGET_DIR"] = str(SCRATCH)
    r = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", step.text],
        cwd=tree, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=1800,
    )
    assert r.returncode == 0, (
        f"{GUIDE.name}:{step.line}: `{step.text.strip()}` failed in {tree} "
        f"(exit {r.returncode}):\n{r.stdout[-6000:]}"
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} DIR   (a copy of this tree; its files are edited)")
    apply(Path(sys.argv[1]), [b for b in GUIDE_BLOCKS if b.action != "run"])
    print("applied; now run, in that tree:\n" + "".join(b.text for b in RUNS))
