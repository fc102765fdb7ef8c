"""What a benchmark leaves behind: its JSON, written atomically with the command line that made it (a figure in
the docs says how to measure it again), and the markdown tables the docs are written from."""

from __future__ import annotations

import json
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from .paths import ROOT


def command_line(argv: Sequence[str] | None = None) -> str:
    """`python benchmarks/NAME.py ARGS` as it was run (the script relative to the repository when inside it)."""
    argv = list(sys.argv if argv is None else argv)
    script = Path(argv[0]).resolve() if argv else Path("?")
    shown = script.relative_to(ROOT).as_posix() if script.is_relative_to(ROOT) else argv[0]
    return shlex.join(["python", shown, *argv[1:]])


def write_json(path: Path, data: dict) -> None:
    """Atomic (a temporary file beside it, then a rename): a reader, or an interrupted benchmark, never
    sees half a file. Creates the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_result(path: Path, result: dict, note: str = "") -> None:
    """A benchmark's result with its command line ("command", unless the script recorded it already),
    written atomically; says where on stderr."""
    result.setdefault("command", command_line())
    write_json(path, result)
    print(f"wrote {path}{f' ({note})' if note else ''}", file=sys.stderr)


def markdown_table(head: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub markdown table, one line per row, cells as given (format them first)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def spread(values: Sequence[float]) -> tuple[float, float, float]:
    """(median, min, max): how the docs state a figure measured more than once."""
    return statistics.median(values), min(values), max(values)


def median_range(values: Iterable[float | None], digits: int) -> str:
    """'45.0 (40.0-60.0)' over the values given (None left out), the median alone for one, '-' for none."""
    present = [v for v in values if v is not None]
    if not present:
        return "-"
    mid, lo, hi = spread(present)
    return f"{mid:.{digits}f}" if len(present) == 1 else f"{mid:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})"


def machine_line(machine: dict) -> str:
    """'CPU (avx2 yes, amx_bf16 no), torch 2.13.0, 2 threads, 2026-11-29 10:00 UTC': a table's first line."""
    flags = ", ".join(f"{name} {'yes' if present else 'no'}" for name, present in machine["cpu_flags"].items())
    return f"{machine['device']} ({flags}), torch {machine['torch']}, {machine['threads']} threads, {machine['date']}"
