"""Interleaved A/B timing of one training-step variant against the default, in one process.

    python benchmarks/ab.py VARIANT [--preset cut] [--pairs 4] [--crop N] [--device cpu]

VARIANT: `contiguous` or `channels_last` (nets and inputs in that layout, whatever the default), `separate`
or `batched` (G, its encoder and D over source and target in separate passes or one batch). Two trainers are built from
the same seed; their steps alternate A, B, A, B, ... so a machine shared with other jobs slows both
alike, and the medians are compared. Prints both medians and B's speed-up; the first pair is warm-up.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script: benchmarks.harness and sincut from this checkout

import torch  # noqa: E402

from benchmarks.harness.args import parser  # noqa: E402
from benchmarks.harness.pairs import inputs_for  # noqa: E402
from benchmarks.harness.steps import build_trainer, training_config  # noqa: E402
from benchmarks.harness.timing import time_calls  # noqa: E402
from sincut.inference.device import pick_device  # noqa: E402
from sincut.training.trainer import Trainer  # noqa: E402


def with_layout(layout: torch.memory_format) -> Callable[[Trainer], Trainer]:
    """A variant: the same trainer with its nets and inputs in `layout`."""
    def convert(trainer: Trainer) -> Trainer:
        for net in (trainer.G, trainer.D, trainer.F):
            net.to(memory_format=layout)
        sample = trainer.sample
        trainer.sample = lambda step: tuple(t.contiguous(memory_format=layout) for t in sample(step))  # type: ignore
        return trainer
    return convert


def with_passes(separate: bool) -> Callable[[Trainer], Trainer]:
    """A variant: G, its encoder and D run over source and target (fakes and reals) in separate passes
    or in one batch (sincut.objective.Objective.separate_passes), whatever the default."""
    def convert(trainer: Trainer) -> Trainer:
        trainer.objective.separate_passes = separate
        return trainer
    return convert


VARIANTS = {"contiguous": with_layout(torch.contiguous_format), "channels_last": with_layout(torch.channels_last),
            "separate": with_passes(True), "batched": with_passes(False)}


def main() -> None:
    ap = parser(__doc__)
    ap.add_argument("variant", choices=sorted(VARIANTS))
    ap.add_argument("--preset", default="cut")
    ap.add_argument("--pairs", type=int, default=4)
    ap.add_argument("--crop", type=int, default=None, help="smaller crops for a quicker look (default: preset's)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    device = pick_device(args.device)
    config = training_config(args.preset, "auto", **({"crop_size": args.crop} if args.crop else {}))
    with tempfile.TemporaryDirectory() as scratch:
        source, target = inputs_for(args.preset, Path(scratch))
        trainers = [make(build_trainer(config, source, target, device))
                    for make in (lambda trainer: trainer, VARIANTS[args.variant])]
        times: list[list[float]] = [[], []]
        for i in range(args.pairs + 1):  # A, B, A, B, ...: a load that changes slows both alike
            for side, trainer in enumerate(trainers):
                seconds = time_calls(lambda _: trainer.step(i), repeats=1, warmup=0, device=device).median
                if i > 0:  # the first pair warms up
                    times[side].append(seconds)
            if i > 0:
                print(f"pair {i}: A {times[0][-1]:.3f} s  B {times[1][-1]:.3f} s", flush=True)
    a, b = statistics.median(times[0]), statistics.median(times[1])
    print(f"{args.preset} crop {config.crop_size}: A (default) {a:.3f} s, B ({args.variant}) {b:.3f} s "
          f"per step (medians of {args.pairs}); B/A speed-up {a / b:.2f}x")


if __name__ == "__main__":
    main()
