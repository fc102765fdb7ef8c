"""--minutes: the run starts with an open step count and is sized to the wall-clock budget after its
first timed steps (MinutesSizer)."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from ..config import TrainConfig
from ..data.folders import FolderPairs
from ..data.images import atomic_write
from ..evaluation.monitor import RunMonitor
from ..progress import TrainingProgress
from .schedule import calibration_steps, fixed_size_from_epoch, steps_for_budget, with_concrete_steps
from .trainer import Trainer


@dataclass
class MinutesSizer:
    """--minutes: the run starts with an open step count (UNSIZED_STEPS, the lr constant); after the
    untrained model's timed evaluation and calibration_steps() timed steps, `size` fixes the total
    that fits the budget, once, before any checkpoint."""

    minutes: float
    start: int  # the first step of this session
    started: float  # time.perf_counter() when the budget began
    seconds_per_eval: float = 0.0  # what one evaluation costs on this machine
    sized: bool = False

    def due(self, done: int, config: TrainConfig, checkpointing: bool) -> bool:
        return not self.sized and (done == self.start + 1 + calibration_steps(config) or checkpointing)

    def size(self, done: int, timed_from: float, trainer: Trainer, monitor: RunMonitor, run: Path,
             progress: TrainingProgress) -> TrainConfig:
        """Fix the total steps from the sustained step time since `timed_from`; one preview and
        evaluation per minute of the budget. The sized config goes to the trainer, the monitor, the
        folder stream and config.json, and is returned."""
        per_step = (time.perf_counter() - timed_from) / max(1, done - self.start - 1)
        left = self.minutes * 60 - (time.perf_counter() - self.started)
        evaluations = max(1, round(self.minutes))
        total = steps_for_budget(done, left, per_step, self.seconds_per_eval, evaluations)
        every = max(1, (total - done) // evaluations)
        config = with_concrete_steps(dataclasses.replace(trainer.config, steps=total, preview_every=every,
                                                         eval_every=0), trainer.data)
        trainer.config = monitor.config = config
        if isinstance(trainer.data, FolderPairs):
            trainer.data.fixed_size_from_epoch = fixed_size_from_epoch(config)
        atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
        progress.start(total, done)
        progress.note(f"{config.minutes:g} minutes at {per_step:.2f} s per step: {total:,} steps, "
                      f"a preview and evaluation every {every:,}")
        self.sized = True
        return config
