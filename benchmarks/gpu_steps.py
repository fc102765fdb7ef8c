"""Seconds per training step of each preset at fp32 and at bf16 autocast, and peak GPU memory: part 1 of the
prepared GPU check (benchmarks/gpu.sh), docs/results/gpu_steps.json.

    python benchmarks/gpu_steps.py [--presets sincut,cut,fastcut] [--precisions fp32,bf16] [--warmup 10]
                                   [--timed 20] [--device cuda] [--json benchmarks/results/gpu_steps.json]

Each preset and precision: the trainer `sincut train` builds (the Etretat/Monet pair or ../shared's small
unpaired set when present, else the bundled samples), --warmup untimed steps, then the median of --timed
whole steps (Trainer.step, each ended by a synchronize; a lazy R1 step counts as it falls). A GPU runs
the presets' steps in 0.1-0.25 s, launch-bound, so a few seconds per preset suffice. `--device cpu`
checks the script's plumbing without a GPU (peak_gpu_mib is then null); a precision the device refuses (bf16
on a CPU without bf16 kernels) is skipped with a line, as `sincut train` refuses it.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402

from benchmarks.harness.args import add_json_option, comma_list, parser  # noqa: E402
from benchmarks.harness.machine import describe  # noqa: E402
from benchmarks.harness.pairs import inputs_for  # noqa: E402
from benchmarks.harness.report import markdown_table, save_result  # noqa: E402
from benchmarks.harness.steps import build_trainer, training_config  # noqa: E402
from benchmarks.harness.timing import sync, time_calls  # noqa: E402
from sincut.errors import UserError  # noqa: E402
from sincut.inference.device import pick_device  # noqa: E402


def time_preset(preset: str, precision: str, device: torch.device, warmup: int, timed: int, scratch: Path) -> dict:
    """One preset at one precision: the median whole step after the warm-up, and the peak GPU memory."""
    trainer = build_trainer(training_config(preset, precision), *inputs_for(preset, scratch), device)
    for step in range(warmup):
        trainer.step(step)
    sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    timings = time_calls(lambda i: trainer.step(warmup + i), timed, warmup=0, device=device)
    peak = round(torch.cuda.max_memory_allocated(device) / 2**20) if device.type == "cuda" else None
    return {"preset": preset, "precision": precision, "seconds_per_step": round(timings.median, 5),
            "peak_gpu_mib": peak, "timed_steps": timed}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("--presets", default="sincut,cut,fastcut")
    ap.add_argument("--precisions", default="fp32,bf16")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first (kernel selection, allocator)")
    ap.add_argument("--timed", type=int, default=20, help="timed steps; their median is the figure")
    ap.add_argument("--device", default="cuda")
    add_json_option(ap, "gpu_steps")
    args = ap.parse_args()
    device = pick_device(args.device)
    rows, skipped = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for preset in comma_list(args.presets):
            for precision in comma_list(args.precisions):
                try:
                    rows.append(time_preset(preset, precision, device, args.warmup, args.timed, Path(scratch)))
                except UserError as e:  # bf16 on a CPU without bf16 kernels: train refuses it, so do we
                    skipped.append(f"{preset} {precision}: {e}")
                    continue
                print(f"{preset} {precision}: {rows[-1]['seconds_per_step'] * 1000:.1f} ms/step", file=sys.stderr,
                      flush=True)
                if device.type == "cuda":
                    torch.cuda.empty_cache()  # the next trainer starts from an empty cache, its peak its own
    print(markdown_table(["preset", "precision", "ms/step", "peak GPU MiB"],
                         [[r["preset"], r["precision"], f"{r['seconds_per_step'] * 1000:.1f}",
                           "-" if r["peak_gpu_mib"] is None else r["peak_gpu_mib"]] for r in rows]))
    for note in skipped:
        print(f"skipped: {note}")
    save_result(args.json, {"machine": describe(device), "rows": rows, "skipped": skipped})


if __name__ == "__main__":
    main()
