#!/usr/bin/env python3
"""Writes the Jupyter notebook of a percent-format script (`# %%` code cells,
`# %% [markdown]` text cells), e.g.

    python3 examples/to_ipynb.py examples/buttons_and_leds.py   # -> .ipynb beside it

The .py is the source; the .ipynb is generated, committed for PYNQ's Jupyter, and
checked to be up to date by host/e2e/test_example_notebook.py."""
import json
import pathlib
import sys


def cells(text):
    out = []
    kind, lines = None, []

    def flush():
        if kind is None:
            return
        while lines and not lines[-1].strip():
            lines.pop()
        if kind == "markdown":
            body = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        else:
            body = lines
        source = [line + "\n" for line in body]
        if source:
            source[-1] = source[-1].rstrip("\n")
        cell = {"cell_type": kind, "metadata": {}, "source": source}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)

    for line in text.splitlines():
        if line.startswith("# %%"):
            flush()
            kind = "markdown" if "[markdown]" in line else "code"
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return out


def notebook(text):
    return {
        "cells": cells(text),
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def render(src):
    return json.dumps(notebook(pathlib.Path(src).read_text()), indent=1, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: to_ipynb.py SCRIPT.py")
    src = pathlib.Path(sys.argv[1])
    src.with_suffix(".ipynb").write_text(render(src))
    print(f"wrote {src.with_suffix('.ipynb')}")
