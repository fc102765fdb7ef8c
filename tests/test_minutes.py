"""--minutes under a changing load: the real loop (_fit) on a simulated machine whose clock moves only by
the work done, each piece of work costing more while the machine is busy. The run must end within 5% of
its budget, outputs included, and its lr must never rise. Nothing here depends on this machine's speed."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import torch

from sincut.config import make_config
from sincut.evaluation.monitor import RunMonitor
from sincut.progress import SilentProgress
from sincut.training import loop
from sincut.training.minutes import MinutesSizer
from sincut.run_folder import prepare_run_dir
from sincut.training.schedule import recent_step_time, resize_every_seconds, steps_left_in_budget
from sincut.training.trainer import Trainer, make_data

BUDGET_MINUTES = 3.0
BUDGET = BUDGET_MINUTES * 60
# What each piece of work costs on the quiet simulated machine, in seconds; a busy machine multiplies it.
STEP, TRANSLATION, EVALUATION, REPORT, CHECKPOINT, START_UP = 0.1, 0.5, 1.0, 1.0, 0.2, 2.0
SLOWER = 3.0  # how much longer everything takes while the machine is busy


def test_recent_step_time_by_hand():
    # 10 steps took 2 s (0.2 s each); one half-life (2 s) long, so they replace half of the previous 0.1 s
    assert recent_step_time(0.1, 2.0, 10, 2.0) == pytest.approx(0.15)
    # twice as long a measurement keeps a quarter: 0.25 x 0.1 + 0.75 x 0.2
    assert recent_step_time(0.1, 4.0, 20, 2.0) == pytest.approx(0.175)
    assert recent_step_time(0.1, 0.0, 0, 2.0) == 0.1  # nothing measured: unchanged


def test_steps_left_in_budget_by_hand():
    # 100 s left, 3 evaluations of 2 s kept for the end -> 94 s; each step 0.5 s plus 2 s / 20 of an
    # evaluation every 20 steps -> 0.6 s; 94 / 0.6 = 156.7 -> 156 more steps
    assert steps_left_in_budget(100.0, 0.5, 2.0, 20) == 156
    assert steps_left_in_budget(5.0, 0.5, 2.0, 20) == 0  # the end's outputs alone fill the time left


def test_resizing_interval_by_hand():
    assert resize_every_seconds(180.0) == pytest.approx(3.6)  # 2% of 3 minutes
    assert resize_every_seconds(15.0) == 1.0  # at least a second
    assert resize_every_seconds(8 * 60.0) == 5.0  # at most 5 s


def test_first_sizing_after_the_calibration_steps_or_a_tenth_of_the_budget():
    now = [20.0]
    sizer = MinutesSizer(minutes=1.0, start=0, started=0.0, clock=lambda: now[0], timed_from=20.0)
    quick = make_config("quick")  # 16 calibration steps: a whole lazy-R1 period
    assert not sizer.due(16, quick, checkpointing=False)  # 15 timed (the first step is not)
    assert sizer.due(17, quick, checkpointing=False)
    now[0] = 25.9  # a busy machine, 3 steps in: not yet a tenth of the 60 s timing steps
    assert not sizer.due(3, quick, checkpointing=False)
    now[0] = 26.0
    assert sizer.due(3, quick, checkpointing=False)  # the calibration would eat the budget: size now
    assert not sizer.due(1, quick, checkpointing=False)  # but never before one timed step
    assert sizer.due(1, quick, checkpointing=True)  # a checkpoint must hold a real total


def test_previews_are_spaced_from_the_previous_one_and_not_just_before_the_end():
    sizer = MinutesSizer(minutes=3.0, start=0, started=0.0, sized_at=17)
    config = make_config("quick", steps=1000, preview_every=300)
    assert not sizer.preview_due(299, config) and sizer.preview_due(300, config)
    sizer.evaluated(310, 1.0)  # late (the spacing was larger then): the next comes 300 after it
    assert not sizer.preview_due(600, config) and sizer.preview_due(610, config)
    sizer.evaluated(610, 1.0)
    assert not sizer.preview_due(910, config)  # 90 steps before the end's own evaluation: under half a spacing


class SimulatedMachine:
    """A clock that moves only by the work done: `work(seconds)` costs `seconds` times the load at that
    moment of the budget (1 quiet, SLOWER busy)."""

    def __init__(self, load: Callable[[float], float]) -> None:
        self.now = 1000.0
        self.started = self.now
        self.load = load

    def clock(self) -> float:
        return self.now

    def work(self, seconds: float) -> None:
        self.now += seconds * self.load(self.now - self.started)


@dataclass
class SimulatedRun:
    seconds: float  # from the budget's start to the report, on the simulated clock
    steps: int  # config.json's total
    lrs: list[float]  # the lr of every step
    evaluated_at: list[float]  # seconds into the budget of each evaluation, the start's and the final one
    trainer: Trainer
    run: Path
    result: loop.TrainResult


def simulated_run(tiny_pair, tmp_path: Path, monkeypatch, load: Callable[[float], float]) -> SimulatedRun:
    """A quick-recipe --minutes run through the real loop: its sizing, lr, logging, previews, checkpoints.
    Simulated: the step (it sets the real lr, then costs simulated time), the translation (the source
    itself), the evaluation's figures (none) and the report; they and the checkpoints cost simulated time."""
    machine = SimulatedMachine(load)
    config = make_config("quick", minutes=BUDGET_MINUTES, crop_size=32, batch_size=2)
    data = make_data(config, *tiny_pair, torch.device("cpu"))
    trainer = Trainer.build(config, data, torch.device("cpu"))
    lrs: list[float] = []
    evaluated_at: list[float] = []

    def step(index: int) -> dict[str, torch.Tensor]:
        trainer.set_lr(index)
        lrs.append(trainer.opt_G.param_groups[0]["lr"])
        machine.work(STEP)
        return {"G_total": torch.tensor(1.0)}

    def translate(image: torch.Tensor) -> torch.Tensor:
        machine.work(TRANSLATION)
        return image.clone()

    def evaluate(monitor: RunMonitor, step: int, *args, **kwargs) -> None:
        evaluated_at.append(machine.now - machine.started)
        machine.work(EVALUATION)

    save_checkpoint = loop.save_checkpoint

    def timed_save_checkpoint(*args, **kwargs) -> Path:
        machine.work(CHECKPOINT)
        return save_checkpoint(*args, **kwargs)

    monkeypatch.setattr(trainer, "step", step)
    monkeypatch.setattr(trainer, "translate", translate)
    monkeypatch.setattr(RunMonitor, "evaluate", evaluate)
    monkeypatch.setattr(RunMonitor, "write_report", lambda monitor: machine.work(REPORT))
    monkeypatch.setattr(loop, "save_checkpoint", timed_save_checkpoint)
    run = prepare_run_dir(tmp_path / "run")
    machine.work(START_UP)  # reading the images, building the networks: inside the budget
    result = loop._fit(trainer, run, 0, SilentProgress(), started=machine.started, clock=machine.clock)
    steps = json.loads((run / "config.json").read_text())["steps"]
    return SimulatedRun(machine.now - machine.started, steps, lrs, evaluated_at, trainer, run, result)


def check_budget_and_lr(sim: SimulatedRun) -> None:
    assert abs(sim.seconds - BUDGET) <= 0.05 * BUDGET, f"a {BUDGET:.0f} s budget took {sim.seconds:.1f} s"
    rises = [(i, a, b) for i, (a, b) in enumerate(zip(sim.lrs, sim.lrs[1:])) if b > a]
    assert not rises, f"the lr rose at (step, from, to) {rises[:3]}"
    lr = sim.trainer.config.lr
    assert sim.lrs[0] == lr and sim.lrs[-1] < 0.1 * lr  # the decay ends with the budget
    assert sim.result.steps == sim.steps == len(sim.lrs)  # config.json holds the total the run ended at
    final = torch.load(sim.run / "checkpoints" / f"step_{sim.steps:07d}.pt", weights_only=True)
    assert final["config"]["steps"] == sim.steps  # a resume continues that schedule
    # one evaluation a minute, none bunched together (a spacing that moved with the total did that)
    gaps = [b - a for a, b in zip(sim.evaluated_at, sim.evaluated_at[1:])]
    assert 3 <= len(gaps) <= 5 and min(gaps) >= 20, f"evaluations at {sim.evaluated_at} s"


def test_a_busy_start_no_longer_ends_the_run_early(tiny_pair, tmp_path: Path, monkeypatch):
    """Busy for the first third: sized once from its first steps, the run planned 3x too few steps and
    ended after 99 of its 180 s."""
    sim = simulated_run(tiny_pair, tmp_path, monkeypatch, lambda t: SLOWER if t < BUDGET / 3 else 1.0)
    check_budget_and_lr(sim)
    # 60 s / 0.3 s + 120 s / 0.1 s = 1,400 steps, less the evaluations' and the end's seconds
    assert 1200 < sim.steps < 1400


def test_a_busy_end_no_longer_overruns(tiny_pair, tmp_path: Path, monkeypatch):
    """Busy for the last third: sized once, the run kept its quiet machine's total and took 295 s."""
    sim = simulated_run(tiny_pair, tmp_path, monkeypatch, lambda t: SLOWER if t >= 2 * BUDGET / 3 else 1.0)
    check_budget_and_lr(sim)
    assert 1200 < sim.steps < 1400  # 1,200 quiet steps and 200 busy ones, less the evaluations' and end's


def test_a_busy_middle_holds_the_lr_when_the_total_grows_again(tiny_pair, tmp_path: Path, monkeypatch):
    """Busy in the middle third: the total shrinks into the decay, then grows again on the quiet machine;
    the grown schedule would raise the lr, which instead holds (lr_ceiling) until the schedule falls below.
    Sized once, this run took 218 s."""
    sim = simulated_run(tiny_pair, tmp_path, monkeypatch, lambda t: SLOWER if BUDGET / 3 <= t < 2 * BUDGET / 3 else 1.0)
    check_budget_and_lr(sim)
    assert sim.trainer.lr_ceiling < 1.0  # the hold was needed
