"""Seconds per step of the paper's own train.py (sincut, cut, fastcut) on this machine, on the GPU gpu_steps.py
times ours on: part 2 of benchmarks/gpu.sh, so both sides are measured in the same call.

    python benchmarks/paper_gpu.py --official DIR [--modes sincut,cut,fastcut] [--iters 20] [--warmup 3]
                                   [--device cuda] [--timeout 90] [--json benchmarks/results/paper_gpu.json]

DIR holds the paper's checkout (DIR/cut, its train.py unmodified but for setup.sh's one CPU change) beside
../shared/tools/official's bench.sh and bench_driver.py (benchmarks/gpu_prepare.sh lays it out; a GPU machine
has no ../shared and no network). bench.sh wants $OFFICIAL_HOME/cut and $OFFICIAL_HOME/venv/bin/python: a scratch
OFFICIAL_HOME links the checkout and a `python` that is this interpreter, so the paper's code runs on the same
torch as ours (its train.py needs torchvision and dominate beside it). --device cuda appends `--gpu_ids 0`
(bench.sh's own is -1, the CPU); train.py then synchronises the GPU after every iteration. Each mode is one
`bench.sh MODE ITERS SOURCE TARGET --warmup N` on the pair gpu_steps.py trains on (cut and fastcut: bench.sh's
32 random crops of each image), in its own process, stopped after --timeout seconds; the figure is its median
wall time per iteration after the warm-up (sec_per_iter_wall_median), beside the median of
optimize_parameters alone. The JSON is rewritten after each mode.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402

from benchmarks.harness.args import add_json_option, comma_list, fail, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.pairs import image_pair  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from sincut.inference.device import pick_device  # noqa: E402

KEPT = ("sec_per_iter_wall_median", "sec_per_iter_median", "iters_timed", "batch_size", "crop_size", "load_size",
        "netG", "netD", "torch_version", "data_dependent_init_s", "last_losses")


def bench_lines(stdout: str) -> dict:
    """bench.sh's `BENCH key=json` lines as a dict (a value that is not JSON kept as text)."""
    out = {}
    for line in stdout.splitlines():
        if line.startswith("BENCH ") and "=" in line and not line.startswith("BENCH_"):
            key, _, value = line[6:].partition("=")
            try:
                out[key.strip()] = json.loads(value)
            except json.JSONDecodeError:
                out[key.strip()] = value.strip()
    return out


def official_home(official: Path, scratch: Path) -> Path:
    """An OFFICIAL_HOME for bench.sh: cut/ -> the checkout, venv/bin/python -> this interpreter."""
    home = scratch / "official_home"
    (home / "venv" / "bin").mkdir(parents=True)
    (home / "cut").symlink_to((official / "cut").resolve())
    python = home / "venv" / "bin" / "python"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return home


def run_mode(mode: str, official: Path, home: Path, device: torch.device, iters: int, warmup: int,
             timeout: float, scratch: Path) -> dict:
    source, target = image_pair()
    argv = ["bash", str(official / "bench.sh"), mode, str(iters), str(source), str(target), "--warmup", str(warmup),
            "--out", str(scratch / mode)]
    if device.type == "cuda":
        argv += ["--", "--gpu_ids", str(device.index or 0)]
    env = {**os.environ, "OFFICIAL_HOME": str(home)}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"mode": mode, "error": f"timed out after {timeout:g} s"}
    found = bench_lines(done.stdout)
    row = {"mode": mode, **{k: found[k] for k in KEPT if k in found}}
    if done.returncode != 0 or "sec_per_iter_wall_median" not in found:
        row["error"] = f"exit {done.returncode}: {(done.stderr or done.stdout).strip()[-400:]}"
    return row


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--official", type=Path, required=True, help="the paper's checkout (cut/) and bench.sh")
    ap.add_argument("--modes", default="sincut,cut,fastcut")
    ap.add_argument("--iters", type=int, default=20, help="timed iterations after the warm-up")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--timeout", type=float, default=90.0, help="seconds each mode may take, start-up included")
    add_json_option(ap, "paper_gpu")
    args = ap.parse_args()
    missing = [p for p in (args.official / "cut" / "train.py", args.official / "bench.sh",
                           args.official / "bench_driver.py") if not p.is_file()]
    if missing:
        fail(f"--official {args.official}: no {', '.join(str(p) for p in missing)} (benchmarks/gpu_prepare.sh lays "
             "them out)")
    device = pick_device(args.device)
    result: dict = {"machine": describe(device), "rows": []}
    with tempfile.TemporaryDirectory() as scratch:
        home = official_home(args.official, Path(scratch))
        for mode in comma_list(args.modes):
            row = run_mode(mode, args.official, home, device, args.iters, args.warmup, args.timeout, Path(scratch))
            result["rows"].append(row)
            print(f"paper's {mode}: " + (row["error"] if "error" in row else
                  f"{row['sec_per_iter_wall_median'] * 1000:.1f} ms/step"), file=sys.stderr, flush=True)
            save_result(args.json, result)
    print(markdown_table(["paper's mode", "ms/step (wall)", "ms optimize_parameters", "batch"],
                         [[r["mode"], r["error"][:60] if "error" in r else f"{r['sec_per_iter_wall_median'] * 1000:.1f}",
                           f"{r['sec_per_iter_median'] * 1000:.1f}" if "sec_per_iter_median" in r else "-",
                           r.get("batch_size", "-")] for r in result["rows"]]))
    save_result(args.json, result)


if __name__ == "__main__":
    main()
