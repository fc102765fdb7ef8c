"""The paper's lr schedule (a staircase: one lr per epoch), its fixed-size decay epochs, and a resumed
run's lr that never jumps back up unless asked to."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sincut.config import make_config
from sincut.data.folders import FolderPairs
from sincut.training.schedule import fixed_size_from_epoch, lr_factor

from .conftest import random_rgb
from .test_resume import cli, tiny


def test_sincut_staircase_worked_by_hand():
    # 8 + 8 epochs of 6,250 steps: the paper's lambda 1 - max(0, e + 1 - 8) / 9 for 0-based epoch e.
    f = lambda step: lr_factor(step, 100_000, 0.5, "epochs", 6250)  # noqa: E731
    assert f(0) == f(49_999) == 1.0
    assert f(50_000) == pytest.approx(8 / 9) and f(56_249) == pytest.approx(8 / 9)
    assert f(56_250) == pytest.approx(7 / 9)
    assert f(99_999) == pytest.approx(1 / 9)  # the last epoch runs at lr / (n_decay + 1), not 0


def test_cut_and_fastcut_staircases_end_at_one_over_decay_plus_one():
    assert lr_factor(400 * 10 - 1, 400 * 10, 0.5, "epochs", 10) == pytest.approx(1 / 201)
    assert lr_factor(200 * 10 - 1, 200 * 10, 0.75, "epochs", 10) == pytest.approx(1 / 51)
    assert lr_factor(150 * 10, 200 * 10, 0.75, "epochs", 10) == pytest.approx(50 / 51)


def test_linear_schedule_decays_every_step_to_zero():
    assert lr_factor(50, 100, 0.5) == 1.0
    assert lr_factor(75, 100, 0.5) == pytest.approx(0.5)
    assert lr_factor(100, 100, 0.5) == 0.0


def test_presets_carry_the_papers_lengths():
    assert make_config("cut").epochs == 400 and make_config("cut").decay_start == 0.5  # 200 + 200
    assert make_config("fastcut").epochs == 200 and make_config("fastcut").decay_start == 0.75  # 150 + 50
    for preset in ("sincut", "cut", "fastcut"):
        assert make_config(preset).lr_schedule == "epochs"
    assert make_config("sincut").patch_positions == "paper"


def test_decay_epochs_resize_to_the_crop_size(tmp_path: Path):
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        random_rgb(50, 60, 1).save(tmp_path / side / "x.png")
    config = make_config("cut", steps=40, epoch_steps=10, crop_size=32, load_size=40)
    assert fixed_size_from_epoch(config) == 2  # epochs 0, 1 jitter; 2, 3 are the decay epochs
    data = FolderPairs(tmp_path / "a", tmp_path / "b", load_size=40, crop_size=32, batch_size=1, flip=True,
                       seed=0, device=__import__("torch").device("cpu"), workers=0)
    data.fixed_size_from_epoch = fixed_size_from_epoch(config)
    data._start_epoch(1, 0)
    assert data.dataset.load_size == 40
    data._start_epoch(2, 0)
    assert data.dataset.load_size == 32


def _lrs(run: Path) -> list[float]:
    return [json.loads(line)["lr"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_resume_with_more_steps_keeps_the_lr_from_rising(tiny_pair, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("train", *tiny_pair, "--out", run, *tiny(4, lr_schedule="linear")).exit_code == 0
    restarted = tmp_path / "restarted"
    shutil.copytree(run, restarted)
    last = _lrs(run)[-1]
    held = cli("resume", run, "--steps", "8", "--device", "cpu")
    assert held.exit_code == 0, held.output
    assert "lr stays at" in held.output
    after = _lrs(run)[4:]
    assert max(after) <= last * (1 + 1e-9)  # never above the lr the run had reached
    assert after == sorted(after, reverse=True)
    raised = cli("resume", restarted, "--steps", "8", "--restart-lr", "--device", "cpu")
    assert raised.exit_code == 0, raised.output
    assert "lr rises" in raised.output
    assert _lrs(restarted)[4] > last
