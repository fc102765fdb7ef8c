"""--minutes: a run sized to a wall-clock budget, and sized again as it goes, so that it ends on time
(final checkpoint, evaluation, result.png and report included) whatever the machine's load does.

The run starts with an open step count (UNSIZED_STEPS, the lr constant). After the untrained model's timed
evaluation and calibration_steps() timed steps, the first sizing fixes a total. From then on, every
resize_every_seconds() of wall time and at the last planned step, the total is worked out again from the
recent step time (an average whose weights halve every resize interval, so a slow start stops counting
within seconds), the time left and the cost of the evaluations still to come, that cost scaled by how
much slower or faster the steps run now: a machine that gets busier shrinks the total, one that gets
quieter grows it. Sized once from its first steps, a run begun under load ended minutes early, and one
loaded later overran.

The lr follows lr_factor(step, total) of the current total, as a fixed-step run's does, so a checkpoint
(which holds the total of its moment, as config.json does) resumes the same schedule. A larger total
would raise the decaying lr (linear: (total - step) / (total - decay start) grows with the total); there
the lr holds at the value it has reached (Trainer.lr_ceiling, kept in checkpoints) until the schedule falls
below it. A smaller total steepens the decay. An lr that followed the fraction of the budget's time
instead would tie each step's lr to the clock, which a resumed run could not repeat.

Previews and evaluations come one a minute of the budget, the final evaluation included: the spacing is
the sized total over their number, counted from the previous one (multiples of a spacing that moves with
the total would bunch them together), and none comes within half a spacing of the end.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..config import TrainConfig
from ..data.folders import FolderPairs
from ..evaluation.monitor import RunMonitor
from ..progress import TrainingProgress
from ..run_folder import write_config
from .schedule import (calibration_steps, fixed_size_from_epoch, recent_step_time, resize_every_seconds,
                       steps_for_budget, steps_left_in_budget, with_concrete_steps)
from .trainer import Trainer

CALIBRATION_SHARE = 0.1  # the calibration steps stop early once they took this share of the budget
NOTE_CHANGE = 0.1  # a sizing is noted on the console when the total moved by this share since the last note


@dataclass
class MinutesSizer:
    """The budget's bookkeeping between sizings. `clock` is injectable, so a test can run the real loop
    on a simulated machine whose load changes."""

    minutes: float
    start: int  # the first step of this session
    started: float  # clock() when the budget began
    clock: Callable[[], float] = time.perf_counter
    timed_from: float = 0.0  # clock() after this session's first step, which pays one-off costs
    seconds_per_eval: float = 0.0  # the latest evaluation's cost (translation, preview, figures)
    seconds_per_step: float = 0.0  # the recent step time (recent_step_time), evaluations left out
    step_time_at_eval: float = 0.0  # the step time just after that evaluation (0: not timed yet)
    eval_ended: tuple[float, int] | None = None  # (clock(), step) at the latest evaluation's end, until timed
    sized_at: int | None = None  # the step of the first sizing; None until then
    last_sized: tuple[float, int] = (0.0, 0)  # (clock(), step) of the latest sizing
    evaluating_seconds: float = 0.0  # spent in periodic evaluations since the latest sizing
    last_evaluated: int | None = None  # the step of the latest periodic evaluation (None: the start)
    noted_total: int = 0

    @property
    def budget_seconds(self) -> float:
        return self.minutes * 60

    def due(self, done: int, config: TrainConfig, checkpointing: bool) -> bool:
        """First after the calibration steps, or after CALIBRATION_SHARE of the budget spent on them (a
        machine so busy that they would eat the budget), or before an earlier checkpoint (which must hold
        a real total); then every resize_every_seconds() of wall time, and at the last planned step (steps
        that ran faster than planned leave time for more)."""
        now = self.clock()
        if self.sized_at is None:
            timed = done - self.start - 1
            long = now - self.timed_from >= CALIBRATION_SHARE * self.budget_seconds
            return timed >= calibration_steps(config) or (timed >= 1 and long) or checkpointing
        return now - self.last_sized[0] >= resize_every_seconds(self.budget_seconds) or done >= config.steps

    def preview_due(self, done: int, config: TrainConfig) -> bool:
        """A preview and evaluation: a spacing after the previous one, unless the final one is nearer
        than half a spacing."""
        if self.sized_at is None:
            return False
        previous = self.start if self.last_evaluated is None else self.last_evaluated
        return done - previous >= config.preview_every and 2 * (config.steps - done) >= config.preview_every

    def evaluated(self, done: int, seconds: float) -> None:
        """The periodic evaluation (with its preview) at step `done` took `seconds`: the end's cost is
        re-estimated from it, and the step time leaves those seconds out."""
        self.last_evaluated = done
        self.seconds_per_eval = seconds
        self.step_time_at_eval, self.eval_ended = 0.0, (self.clock(), done)
        self.evaluating_seconds += seconds

    def eval_seconds_now(self) -> float:
        """The latest evaluation's cost, scaled by how much slower (or faster) steps run now than just
        after it: a load that slows the steps slows the final outputs alike. Just after, not before: a
        load that changes during an evaluation is there for the steps after it."""
        if self.step_time_at_eval <= 0 or self.seconds_per_step <= 0:
            return self.seconds_per_eval
        return self.seconds_per_eval * self.seconds_per_step / self.step_time_at_eval

    def size(self, done: int, trainer: Trainer, monitor: RunMonitor, run: Path,
             progress: TrainingProgress) -> TrainConfig:
        """Fix the total steps, `done` steps in: the first time from the sustained step time since
        `timed_from`, later from the recent step time. A changed total or spacing goes to the trainer, the
        monitor, the folder stream and config.json (atomically); returns the config now in force."""
        now = self.clock()
        left = self.budget_seconds - (now - self.started)
        evaluations = max(1, round(self.minutes))  # one a minute, the final one included
        first = self.sized_at is None
        if first:
            timed = done - self.start - 1
            if timed:
                self.seconds_per_step = (now - self.timed_from) / timed
            else:  # a checkpoint or a stop at the first step: all the time so far, an overestimate
                self.seconds_per_step = (now - self.started) / (done - self.start)
            self.step_time_at_eval = self.seconds_per_step  # the untrained model's evaluation ran just before
            self.sized_at = done
            total = steps_for_budget(done, left, self.seconds_per_step, self.seconds_per_eval, evaluations - 1)
        else:
            last_time, last_done = self.last_sized
            stepping = now - last_time - self.evaluating_seconds
            interval = resize_every_seconds(self.budget_seconds)
            self.seconds_per_step = recent_step_time(self.seconds_per_step, stepping, done - last_done, interval)
            if self.eval_ended is not None and now - self.eval_ended[0] >= interval / 2 and done > self.eval_ended[1]:
                self.step_time_at_eval = (now - self.eval_ended[0]) / (done - self.eval_ended[1])
                self.eval_ended = None
            total = done + steps_left_in_budget(left, self.seconds_per_step, self.eval_seconds_now(),
                                                trainer.config.preview_every)
        self.last_sized, self.evaluating_seconds = (now, done), 0.0
        every = -(-total // evaluations)  # rounded up: the last periodic evaluation is a spacing before the end
        if total == trainer.config.steps and every == trainer.config.preview_every:
            return trainer.config
        reached_lr = trainer.lr_value  # the lr of the step just taken
        config = with_concrete_steps(dataclasses.replace(trainer.config, steps=total, preview_every=every,
                                                         eval_every=0), trainer.data)
        trainer.config = monitor.config = config
        if config.lr > 0 and trainer.lr_at(done) > reached_lr:  # a longer schedule never raises the lr
            ceiling = reached_lr / config.lr
            trainer.lr_ceiling = ceiling if config.lr * ceiling <= reached_lr else math.nextafter(ceiling, 0.0)
        if isinstance(trainer.data, FolderPairs):
            trainer.data.fixed_size_from_epoch = fixed_size_from_epoch(config)
        write_config(run, config)
        progress.start(total, done)
        if first:
            progress.note(f"{config.minutes:g} minutes at {self.seconds_per_step:.2f} s per step: {total:,} steps, "
                          f"a preview and evaluation every {every:,}")
            self.noted_total = total
        elif abs(total - self.noted_total) > NOTE_CHANGE * self.noted_total:
            progress.note(f"steps now take {self.seconds_per_step:.2f} s: {total:,} steps fit the budget "
                          f"(was {self.noted_total:,})")
            self.noted_total = total
        return config
