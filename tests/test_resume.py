"""Never lose work: exact resume, graceful and hard stops, divergence and disk errors."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from sincut.cli import main

from .conftest import ROOT, TINY_TRAIN


def cli(*args) -> "click.testing.Result":  # noqa: F821
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="sincut")


def tiny(steps: int, **extra: str) -> list[str]:
    args = list(TINY_TRAIN)
    args[args.index("--steps") + 1] = str(steps)
    for key, value in extra.items():
        flag = "--" + key.replace("_", "-")
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    return args


def final_state(run: Path) -> dict:
    last = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    return torch.load(last, weights_only=True)


def assert_same_training_state(a: dict, b: dict) -> None:
    assert a["step"] == b["step"]
    for net in ("G", "D", "F"):
        for name, tensor in a[net].items():
            assert torch.equal(tensor, b[net][name]), f"{net}.{name} differs"
    for opt in ("opt_G", "opt_D"):
        for pid, slot in a[opt]["state"].items():
            for key, value in slot.items():
                assert torch.equal(value, b[opt]["state"][pid][key]), f"{opt}[{pid}].{key} differs"
    assert torch.equal(a["rng"]["sampler"], b["rng"]["sampler"])


def test_resumed_run_is_bitwise_identical(tiny_pair, tmp_path: Path):
    src, tgt = tiny_pair
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli("train", src, tgt, "--out", straight, *tiny(5)).exit_code == 0
    # The same run, cut short after step 2: its step-2 checkpoint is what a crash would leave.
    assert cli("train", src, tgt, "--out", stopped, *tiny(5, checkpoint_every="2", keep="5")).exit_code == 0
    for later in ("step_0000004.pt", "step_0000005.pt"):
        (stopped / "checkpoints" / later).unlink()
    result = cli("resume", stopped, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert_same_training_state(final_state(straight), final_state(stopped))
    log = [json.loads(line)["step"] for line in (stopped / "log.jsonl").read_text().splitlines()]
    assert log == [1, 2, 3, 4, 5]  # lines past the checkpoint were dropped, then written again


def test_resume_can_extend_but_not_change_the_objective(tiny_pair, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("train", *tiny_pair, "--out", run, *tiny(2)).exit_code == 0
    refused = cli("resume", run, "--lr", "0.1")
    assert refused.exit_code == 2 and "--lr 0.1 differs" in refused.output and "Traceback" not in refused.output
    other = cli("resume", run, "--preset", "fastcut")
    assert other.exit_code == 2 and "--preset fastcut differs from this run's sincut" in other.output
    done = cli("resume", run)
    assert done.exit_code == 2 and "--steps N with N > 2" in done.output
    extended = cli("resume", run, "--steps", "4", "--device", "cpu")
    assert extended.exit_code == 0, extended.output
    assert final_state(run)["step"] == 4
    assert json.loads((run / "config.json").read_text())["steps"] == 4


def test_train_on_an_existing_run_says_how_to_resume(tiny_pair, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("train", *tiny_pair, "--out", run, *tiny(1)).exit_code == 0
    again = cli("train", *tiny_pair, "--out", run, *tiny(1))
    assert again.exit_code == 2 and f"sincut resume {run}" in again.output


def test_non_finite_loss_stops_with_the_loss_and_step(tiny_pair, tmp_path: Path, monkeypatch):
    from sincut.losses import Objective

    original = Objective.generator_loss
    calls = {"n": 0}

    def poisoned(self, fwd):
        loss, parts = original(self, fwd)
        calls["n"] += 1
        if calls["n"] >= 3:
            parts["NCE"] = parts["NCE"] * float("nan")
        return loss, parts

    monkeypatch.setattr(Objective, "generator_loss", poisoned)
    run = tmp_path / "run"
    result = cli("train", *tiny_pair, "--out", run, *tiny(5, checkpoint_every="1", keep="10"))
    assert result.exit_code == 1
    assert "loss NCE became nan at step 3" in result.output and "Traceback" not in result.output
    assert [p.name for p in sorted((run / "checkpoints").glob("*.pt"))] == ["step_0000001.pt", "step_0000002.pt"]


def test_disk_full_while_saving_keeps_the_previous_checkpoint(tiny_pair, tmp_path: Path, monkeypatch):
    import sincut.checkpoint as ckpt

    real_save = torch.save
    saves = {"n": 0}

    def save_then_fill_disk(obj, f):
        saves["n"] += 1
        if saves["n"] == 2:
            f.write(b"partial")
            raise OSError(28, "No space left on device")
        return real_save(obj, f)

    monkeypatch.setattr(ckpt.torch, "save", save_then_fill_disk)
    run = tmp_path / "run"
    result = cli("train", *tiny_pair, "--out", run, *tiny(4, checkpoint_every="1"))
    assert result.exit_code == 1
    assert "No space left on device" in result.output and "step_0000001.pt is intact" in result.output
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["step_0000001.pt"]  # no temp file left
    torch.load(run / "checkpoints" / "step_0000001.pt", weights_only=True)


def _train_process(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "sincut", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    t0 = time.time()
    while not path.exists():
        assert proc.poll() is None, proc.stdout.read()
        assert time.time() - t0 < timeout
        time.sleep(0.05)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_graceful_stop_saves_and_exits(tiny_pair, tmp_path: Path, sig, code):
    run = tmp_path / "run"
    proc = _train_process(["train", *map(str, tiny_pair), "--out", str(run), *tiny(400, checkpoint_every="1000")],
                          tmp_path)
    _wait_for(run / "log.jsonl", proc)
    time.sleep(0.5)
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == code, out
    assert f"sincut resume {run}" in out and "Traceback" not in out
    saved = torch.load(sorted((run / "checkpoints").glob("*.pt"))[-1], weights_only=True)
    assert 1 <= saved["step"] < 400


def test_sigkill_at_random_moments_always_leaves_a_resumable_run(tiny_pair, tmp_path: Path):
    """Kill -9 three times at random moments (mid-step, mid-checkpoint, mid-preview), resume each
    time, and the finished run equals one that was never interrupted, bit for bit."""
    src, tgt = map(str, tiny_pair)
    args = tiny(12, checkpoint_every="1", preview_every="3")
    straight = tmp_path / "straight"  # in a child process too: same thread count, same float sums
    proc = _train_process(["train", src, tgt, "--out", str(straight), *args], tmp_path)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    run = tmp_path / "killed"
    chooser = random.Random(1234)
    command = ["train", src, tgt, "--out", str(run), *args]
    for _ in range(3):
        proc = _train_process(command, tmp_path)
        _wait_for(run / "log.jsonl", proc)
        time.sleep(chooser.uniform(0.0, 1.5))
        proc.kill()
        proc.wait()
        command = ["resume", str(run), "--device", "cpu"]
    proc = _train_process(command, tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert not list(run.rglob("*.tmp"))
    assert_same_training_state(final_state(straight), final_state(run))
