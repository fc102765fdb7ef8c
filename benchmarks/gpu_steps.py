"""Seconds per training step of each preset, eager and captured (--cuda-graphs), at fp32 (TF32 on a GPU) and at
bf16 autocast, with peak GPU memory and the fraction of the GPU's peak the step reaches: part 1 of the prepared
GPU check (benchmarks/gpu.sh), docs/results/gpu_steps.json.

    python benchmarks/gpu_steps.py [--presets sincut,quick,cut,fastcut] [--precisions fp32,bf16]
                                   [--modes eager,captured] [--warmup 10] [--timed 20] [--device cuda]
                                   [--json benchmarks/results/gpu_steps.json]

Each preset, precision and mode: the trainer `sincut train` builds (the Etretat/Monet pair or ../shared's small
unpaired set when present, else the bundled samples; captured: with --cuda-graphs), --warmup untimed steps (a
captured run also warms up and captures every kind of step first: WARMUP_STEPS eager steps of each, so lazy R1
every 16 steps needs 49), then whole R1 periods of at least --timed steps, timed together with one synchronize
at the end: seconds_per_step is their mean, so the lazy R1 steps count in proportion (fewer --timed steps than
a period time that many: "whole_r1_periods": false). The step's FLOPs
(harness/flops.py, counted on the eager trainer: a replay dispatches nothing to count) at the GPU's measured
peak of each precision give the floor, and floor / seconds_per_step the fraction of the peak. The JSON is
rewritten after every row, so a run cut short by its time limit keeps what it measured; a mode that fails
records its error and the rest go on. `--device cpu` checks the plumbing without a GPU: peak memory and the
fraction are null, and the captured rows run the captured step's body eagerly (no graphs on a CPU:
`"graphs": false`).
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402

from benchmarks.harness.args import add_json_option, comma_list, parser  # noqa: E402
from benchmarks.harness.flops import floor_seconds, peak_gflops  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.pairs import inputs_for  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from benchmarks.harness.steps import build_trainer, r1_period, step_gflop, training_config, whole_r1_periods  # noqa: E402,E501
from benchmarks.harness.timing import sync  # noqa: E402
from sincut.errors import UserError  # noqa: E402
from sincut.inference.device import pick_device  # noqa: E402
from sincut.training.graphs import WARMUP_STEPS, CapturedSteps  # noqa: E402

MODES = ("eager", "captured")


def time_preset(preset: str, precision: str, mode: str, device: torch.device, warmup: int, timed: int,
                scratch: Path, gflop: dict | None) -> tuple[dict, dict | None]:
    """One preset, precision and mode: the mean step over whole R1 periods after the warm-up, the peak GPU
    memory; the eager mode also counts the step's FLOPs (returned for the captured row)."""
    config = training_config(preset, precision)
    captured = mode == "captured"
    graphs = captured and device.type == "cuda"
    trainer = build_trainer(dataclasses.replace(config, cuda_graphs=graphs), *inputs_for(preset, scratch), device)
    if captured and not graphs:
        trainer.graphs = CapturedSteps(trainer, capture=False)  # the body a graph records, run eagerly
    period = r1_period(trainer.config)
    warmup = max(warmup, WARMUP_STEPS * period + 1) if graphs else warmup  # every kind captured first
    for step in range(warmup):
        trainer.step(step)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    whole = timed >= period  # fewer steps than an R1 period (a CPU's plumbing check): a part of one, said so
    steps = whole_r1_periods(trainer.config, timed) if whole else timed
    start = warmup + (-warmup % period) if whole else warmup  # from the start of an R1 period
    for step in range(warmup, start):
        trainer.step(step)
    sync(device)
    t0 = time.perf_counter()
    for step in range(start, start + steps):
        trainer.step(step)
    sync(device)
    seconds = (time.perf_counter() - t0) / steps
    peak = round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None
    if not captured:
        gflop = step_gflop(trainer)
    row = {"preset": preset, "precision": precision, "mode": mode, "graphs": graphs,
           "seconds_per_step": round(seconds, 5), "peak_gpu_mib": peak, "timed_steps": steps, "warmup_steps": warmup,
           "r1_every": period, "whole_r1_periods": whole}
    if gflop is not None:
        row.update(gflop=round(gflop["gflop"], 2), gflop_by_precision=gflop["gflop_by_precision"])
    return row, gflop


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--presets", default="sincut,quick,cut,fastcut")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--modes", default=",".join(MODES), help="eager, captured (--cuda-graphs), or both")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (kernel selection, allocator)")
    ap.add_argument("--timed", type=int, default=20, help="timed steps at least (whole lazy-R1 periods)")
    ap.add_argument("--device", default="cuda")
    add_json_option(ap, "gpu_steps")
    args = ap.parse_args()
    device = pick_device(args.device)
    modes = [m for m in MODES if m in comma_list(args.modes)]
    peaks = peak_gflops(device, quick=True) if device.type == "cuda" else None
    result = {"machine": describe(device), "peak_gflops": peaks, "rows": [], "skipped": []}
    rows, skipped = result["rows"], result["skipped"]
    with tempfile.TemporaryDirectory() as scratch:
        for precision in comma_list(args.precisions):  # every preset's fp32 first: what a time limit keeps
            for preset in comma_list(args.presets):
                gflop = None
                for mode in modes:
                    try:
                        row, gflop = time_preset(preset, precision, mode, device, args.warmup, args.timed,
                                                 Path(scratch), gflop)
                    except UserError as e:  # bf16 on a CPU without bf16 kernels: train refuses it, so do we
                        skipped.append(f"{preset} {precision} {mode}: {e}")
                        break
                    except Exception as e:  # noqa: BLE001 - a mode that fails on this GPU: say so, measure the rest
                        row = {"preset": preset, "precision": precision, "mode": mode,
                               "error": f"{type(e).__name__}: {str(e)[:400]}"}
                    if peaks is not None and "gflop_by_precision" in row:
                        row["floor_s"] = floor_seconds(row["gflop_by_precision"], peaks)
                        row["fraction_of_peak"] = round(row["floor_s"] / row["seconds_per_step"], 4)
                    rows.append(row)
                    print(f"{preset} {precision} {mode}: " + (row["error"] if "error" in row else
                          f"{row['seconds_per_step'] * 1000:.1f} ms/step"), file=sys.stderr, flush=True)
                    save_result(args.json, result)  # each row as it comes: a run cut short keeps what it measured
                    if device.type == "cuda":
                        torch.cuda.empty_cache()  # the next trainer starts from an empty cache, its peak its own
    print(markdown_table(["preset", "precision", "mode", "ms/step", "peak GPU MiB", "of peak"],
                         [[r["preset"], r["precision"], r["mode"],
                           r["error"][:60] if "error" in r else f"{r['seconds_per_step'] * 1000:.1f}",
                           r.get("peak_gpu_mib") or "-", r.get("fraction_of_peak") or "-"] for r in rows]))
    for note in skipped:
        print(f"skipped: {note}")
    save_result(args.json, result)


if __name__ == "__main__":
    main()
