"""One training step, timed phase by phase and counted in FLOPs, on the trainer `sincut train` builds: shared by
run.py (seconds per step beside the paper's code) and step_profile.py (where a step's time goes)."""

from __future__ import annotations

import dataclasses
import math
import statistics
import time
from pathlib import Path

import torch

from sincut.config import TrainConfig, make_config
from sincut.nets.wrappers import unwrap
from sincut.training.schedule import ema_beta, update_average, with_concrete_steps
from sincut.training.trainer import Trainer, check_device_support, make_data

from .flops import CountFlops
from .timing import sync

PHASES = ("sampler", "G forward", "D step", "G+F step", "EMA", "total")
# A preset sized by --minutes (quick) has no step count until a run sizes it; the lr schedule needs one.
# Its value changes only the lr, not what a step costs.
UNSIZED_PRESET_STEPS = 1000


def training_config(preset: str, precision: str, **overrides) -> TrainConfig:
    """The preset's recipe at `precision` (already resolved: fp32 or bf16) with `overrides`; a preset sized
    by --minutes gets UNSIZED_PRESET_STEPS so its lr schedule is defined."""
    config = make_config(preset, precision=precision, **overrides)
    if config.steps is None and config.epochs is None:
        config = make_config(preset, precision=precision, steps=UNSIZED_PRESET_STEPS, **overrides)
    return config


def build_trainer(config: TrainConfig, source: Path, target: Path, device: torch.device) -> Trainer:
    """What `sincut train` builds: the data (patch sampler or folders) and the trainer, refused where train
    refuses the precision (bf16 on a CPU without bf16 kernels)."""
    check_device_support(config, device)
    data = make_data(config, source, target, device)
    return Trainer.build(with_concrete_steps(config, data), data, device)


def r1_period(config: TrainConfig) -> int:
    """K for lazy R1 every K steps; 1 when R1 runs on every step or not at all."""
    return config.r1_every if config.r1_gamma > 0 else 1


def whole_r1_periods(config: TrainConfig, timed: int) -> int:
    """At least `timed` steps and at least two whole R1 periods, so the average holds R1 in proportion."""
    period = r1_period(config)
    return timed if period == 1 else period * max(2, math.ceil(timed / period))


@dataclasses.dataclass
class StepTimes:
    """Seconds of each phase of each timed step, and whether R1 ran on it."""

    r1_every: int
    phases: dict[str, list[float]] = dataclasses.field(default_factory=lambda: {p: [] for p in PHASES})
    with_r1: list[bool] = dataclasses.field(default_factory=list)

    def per_step(self) -> dict[str, float | bool | None]:
        """Each phase's median over the timed steps, averaged over an R1 period: ((K - 1) x the median without
        R1 + the median with R1) / K; 'R1' is the D step's difference over K (None where it cannot be told
        apart: R1 on every step, or not in the timed steps: then 'r1_covered' is False)."""
        k = self.r1_every
        plain = [i for i, r1 in enumerate(self.with_r1) if not r1]
        lazy = [i for i, r1 in enumerate(self.with_r1) if r1]
        covered = k == 1 or (bool(plain) and bool(lazy))
        out: dict[str, float | bool | None] = {"r1_covered": covered, "R1": None}
        for phase, values in self.phases.items():
            if k > 1 and covered:
                without = statistics.median(values[i] for i in plain)
                with_r1 = statistics.median(values[i] for i in lazy)
                out[phase] = ((k - 1) * without + with_r1) / k
                if phase == "D step":
                    out["D step without R1"] = without
                    out["R1"] = (with_r1 - without) / k
            else:
                out[phase] = statistics.median(values) if values else 0.0
        out.setdefault("D step without R1", None)
        return out


def time_steps(trainer: Trainer, timed: int, warmup: int, device: torch.device) -> StepTimes:
    """Trainer.step's phases, each timed: steps 0..warmup-1 untimed (step 0 runs R1, so R1's first call is
    warmed up too), then `timed` steps."""
    config = trainer.config
    times = StepTimes(r1_period(config))
    for i in range(warmup + timed):
        sync(device)
        t0 = time.perf_counter()
        trainer.set_lr(i)
        src, tgt = trainer.sample(i)
        sync(device)
        t1 = time.perf_counter()
        fwd = trainer.forward(src, tgt)
        sync(device)
        t2 = time.perf_counter()
        trainer.discriminator_step(fwd, i)
        sync(device)
        t3 = time.perf_counter()
        trainer.generator_step(fwd)
        sync(device)
        t4 = time.perf_counter()
        if trainer.G_average is not None:
            update_average(trainer.G_average, unwrap(trainer.G), ema_beta(i + 1, config.ema_halflife))
        sync(device)
        t5 = time.perf_counter()
        if i >= warmup:
            for phase, seconds in zip(PHASES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t5 - t0)):
                times.phases[phase].append(seconds)
            times.with_r1.append(config.r1_gamma > 0 and i % config.r1_every == 0)
    return times


def step_gflop(trainer: Trainer) -> dict:
    """GFLOPs of one step averaged over an R1 period (step 0 runs R1; step 1 does not when it is lazy), in
    total, by op and by the precision each kernel ran in. Takes real steps: call after timing."""
    period = r1_period(trainer.config)
    counts = []
    for step in ([0] if period == 1 else [0, 1]):
        counter = CountFlops()
        with counter:
            trainer.step(step)
        counts.append(counter)
    weights = [1.0] if period == 1 else [1 / period, (period - 1) / period]

    def averaged(key: str) -> dict[str, float]:
        names = {name for c in counts for name in getattr(c, key)}
        return {n: sum(w * getattr(c, key).get(n, 0) for w, c in zip(weights, counts)) / 1e9 for n in sorted(names)}

    by_op = averaged("by_op")
    return {"gflop": sum(by_op.values()), "gflop_by_op": by_op, "gflop_by_precision": averaged("by_precision"),
            "gflop_r1_step": counts[0].total / 1e9, "gflop_plain_step": counts[-1].total / 1e9}
