"""`sincut train` as a user runs it, in a fresh process one at a time, and what a finished run folder holds: the
quality screens (quality.py, ablation.py) and the memory and --minutes benchmarks all judge the real command."""

from __future__ import annotations

import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

from sincut.run_folder import read_jsonl

from .args import fail
from .paths import ROOT

# The figures a run's metrics.jsonl holds that the screens compare (baselines.score gives the same ones)
FIGURE_KEYS = ("sifid", "texture_distance", "ssim", "edge_correlation", "style_distance")


def train_command(source: Path, target: Path, run: Path, options: Sequence[str], device: str = "cpu") -> list[str]:
    """`sincut train SOURCE TARGET OPTIONS --out RUN --device DEVICE` with this interpreter."""
    return [sys.executable, "-m", "sincut", "train", str(source), str(target), *options, "--out", str(run),
            "--device", device]


def threads_env(threads: int | None) -> dict[str, str]:
    """This environment, with `threads` torch threads per run when given (else torch's default)."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else dict(os.environ)


def train_once(cmd: Sequence[str], threads: int | None = None, hint: str = "") -> float:
    """Run one train command to its end from the repository root; its wall seconds (start-up and the final
    outputs included). A failure stops the benchmark with the run's last messages and `hint`."""
    start = time.perf_counter()
    done = subprocess.run(list(cmd), env=threads_env(threads), cwd=ROOT, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)
    if done.returncode:
        fail(f"`sincut {shlex.join(cmd[3:])}` exited with status {done.returncode}{hint}:\n{done.stderr[-2000:]}")
    return time.perf_counter() - start


def run_steps(run: Path) -> int:
    """The steps a finished run trained (what --minutes sized it to)."""
    return json.loads((run / "config.json").read_text(encoding="utf-8"))["steps"]


def evaluations(run: Path) -> list[dict]:
    """Every evaluation of the run's metrics.jsonl, in order (step 0: the untrained one)."""
    return read_jsonl(run / "metrics.jsonl")


def final_figures(run: Path) -> dict:
    """The figures of the run's last evaluation, at its final step."""
    steps = run_steps(run)
    final = [r for r in evaluations(run) if r["step"] == steps][-1]
    return {k: final[k] for k in FIGURE_KEYS if k in final}


def median_seconds_per_step(run: Path) -> float:
    """The (upper) median of the seconds per step the run logged: its speed, at the load it met."""
    return statistics.median_high(r["seconds_per_step"] for r in read_jsonl(run / "log.jsonl"))


def recorded(stamp: Path, request: dict) -> dict | None:
    """The JSON a finished run left at `stamp`, when it was made with exactly `request` (each key equal),
    else None: --reuse keeps a run only if nothing it depends on changed."""
    if not stamp.is_file():
        return None
    saved = json.loads(stamp.read_text(encoding="utf-8"))
    return saved if all(saved.get(k) == v for k, v in request.items()) else None
