"""Interleaved A/B timing of one training-step variant against the default, in one process.

    python benchmarks/ab.py VARIANT [--preset cut] [--pairs 4] [--crop N] [--device cpu]

VARIANT: `contiguous` or `channels_last` (nets and inputs in that layout, whatever the default), `separate`
or `batched` (G, its encoder and D over source and target in separate passes or one batch). Two trainers are built from
the same seed; their steps alternate A, B, A, B, ... so a machine shared with other jobs slows both
alike, and the medians are compared. Prints both medians and B's speed-up; the first pair is warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import inputs_for, sync  # noqa: E402
from sincut.config import make_config  # noqa: E402
from sincut.training.trainer import Trainer, make_data  # noqa: E402
from sincut.training.schedule import with_concrete_steps  # noqa: E402
from sincut.inference.device import pick_device  # noqa: E402


def with_layout(layout: torch.memory_format):
    """A variant: the same trainer with its nets and inputs in `layout`."""
    def convert(trainer: Trainer) -> Trainer:
        for net in (trainer.G, trainer.D, trainer.F):
            net.to(memory_format=layout)
        sample = trainer.sample
        trainer.sample = lambda step: tuple(t.contiguous(memory_format=layout) for t in sample(step))  # type: ignore
        return trainer
    return convert


def with_passes(separate: bool):
    """A variant: G, its encoder and D run over source and target (fakes and reals) in separate passes
    or in one batch (sincut.objective.Objective.separate_passes), whatever the default."""
    def convert(trainer: Trainer) -> Trainer:
        trainer.objective.separate_passes = separate
        return trainer
    return convert


VARIANTS = {"contiguous": with_layout(torch.contiguous_format), "channels_last": with_layout(torch.channels_last),
            "separate": with_passes(True), "batched": with_passes(False)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("variant", choices=sorted(VARIANTS))
    parser.add_argument("--preset", default="cut")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--crop", type=int, default=None, help="smaller crops for a quicker look (default: preset's)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = pick_device(args.device)
    overrides = {"crop_size": args.crop} if args.crop else {}
    config = make_config(args.preset, **overrides)
    if config.steps is None and config.epochs is None:  # a preset sized by --minutes (quick): any schedule
        config = make_config(args.preset, steps=1000, **overrides)
    with tempfile.TemporaryDirectory() as scratch:
        source, target = inputs_for(args.preset, Path(scratch))
        trainers = []
        for make in (lambda t: t, VARIANTS[args.variant]):
            data = make_data(config, source, target, device)
            trainers.append(make(Trainer.build(with_concrete_steps(config, data), data, device)))
        times: list[list[float]] = [[], []]
        for i in range(args.pairs + 1):
            for side, trainer in enumerate(trainers):
                sync(device)
                t = time.perf_counter()
                trainer.step(i)
                sync(device)
                if i > 0:
                    times[side].append(time.perf_counter() - t)
            if i > 0:
                print(f"pair {i}: A {times[0][-1]:.3f} s  B {times[1][-1]:.3f} s", flush=True)
    a, b = statistics.median(times[0]), statistics.median(times[1])
    print(f"{args.preset} crop {config.crop_size}: A (default) {a:.3f} s, B ({args.variant}) {b:.3f} s "
          f"per step (medians of {args.pairs}); B/A speed-up {a / b:.2f}x")


if __name__ == "__main__":
    main()
