"""Never lose work: exact resume, graceful and hard stops, divergence and disk errors."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from sincut.cli import main
from sincut.config import TrainConfig, changeable_on_resume
from sincut.interrupt import KILL_AT_ENV

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


def assert_same(a, b, where: str = "state") -> None:
    """Equal in both directions, all the way down: the same keys, tensors bit for bit, the rest by ==."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} vs {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), f"{where}: keys differ: {set(a) ^ set(b)}"
        for key in a:
            assert_same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: lengths {len(a)} vs {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), f"{where} differs"
    else:
        assert a == b, f"{where}: {a!r} vs {b!r}"


def assert_same_training_state(a: dict, b: dict) -> None:
    """Everything a checkpoint holds: weights, optimiser moments and param groups (lr included), every
    RNG (Python, NumPy, torch, the sampler's), the config and the step."""
    for part in ("G", "D", "F", "opt_G", "opt_D", "rng", "lr", "step", "config"):
        assert part in a and part in b, part
    assert_same({k: v for k, v in a.items() if k != "config"}, {k: v for k, v in b.items() if k != "config"})
    bookkeeping = {f.name for f in dataclasses.fields(TrainConfig) if changeable_on_resume(f)}
    assert_same({k: v for k, v in a["config"].items() if k not in bookkeeping},  # the recipe, not --keep etc.
                {k: v for k, v in b["config"].items() if k not in bookkeeping}, "state.config")


def test_state_comparison_notices_every_part():
    """assert_same_training_state fails for a difference in any part, in either direction."""
    base = {"step": 2, "lr": 0.002, "config": {"seed": 0, "keep_checkpoints": 2}, "G": {"w": torch.zeros(2)}, "D": {}, "F": {},
            "opt_G": {"state": {0: {"exp_avg": torch.zeros(2)}}, "param_groups": [{"lr": 0.002, "params": [0]}]},
            "opt_D": {"state": {}, "param_groups": [{"lr": 0.002, "params": []}]},
            "rng": {"python": (3, (1, 2), None), "numpy": {"pos": 1}, "torch": torch.zeros(3, dtype=torch.uint8),
                    "sampler": torch.zeros(3, dtype=torch.uint8)}}
    assert_same_training_state(base, base)
    import copy

    def changed(edit) -> dict:
        other = copy.deepcopy(base)
        edit(other)
        return other

    edits = [
        lambda s: s["rng"].__setitem__("python", (3, (1, 3), None)),
        lambda s: s["rng"]["numpy"].__setitem__("pos", 2),
        lambda s: s["rng"]["torch"].add_(1),
        lambda s: s["opt_G"]["param_groups"][0].__setitem__("lr", 0.001),
        lambda s: s.__setitem__("lr", 0.001),
        lambda s: s["config"].__setitem__("seed", 1),
        lambda s: s["opt_G"]["state"][0].__setitem__("exp_avg_sq", torch.zeros(2)),  # an extra key
    ]
    for edit in edits:
        other = changed(edit)
        for first, second in ((base, other), (other, base)):
            with pytest.raises(AssertionError):
                assert_same_training_state(first, second)


@pytest.mark.parametrize("extra", [{}, {"ema_halflife": "2"},
                                   {"preset": "quick", "colour_init": "pitie", "lambda_patch_swd": "1"}],
                         ids=["plain", "weight-average", "colour-init-patch-swd"])
def test_resumed_run_is_bitwise_identical(tiny_pair, tmp_path: Path, extra: dict):
    src, tgt = tiny_pair
    straight, stopped = tmp_path / "straight", tmp_path / "stopped"
    assert cli("train", src, tgt, "--out", straight, *tiny(5, **extra)).exit_code == 0
    # The same run, cut short after step 2: its step-2 checkpoint is what a crash would leave.
    assert cli("train", src, tgt, "--out", stopped, *tiny(5, checkpoint_every="2", keep="5", **extra)).exit_code == 0
    for later in ("step_0000004.pt", "step_0000005.pt"):
        (stopped / "checkpoints" / later).unlink()
    result = cli("resume", stopped, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert_same_training_state(final_state(straight), final_state(stopped))
    assert ("G_average" in final_state(stopped)) == bool(extra)
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


def test_resume_may_change_how_the_run_executes(tiny_pair, tmp_path: Path, monkeypatch):
    """--precision and --compile change how the same recipe runs (a CPU run may go on on a GPU with
    --compile): resume takes them, saves them, and builds the networks with them."""
    run = tmp_path / "run"
    assert cli("train", *tiny_pair, "--out", run, *tiny(2)).exit_code == 0
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda module, **kw: compiled.append(type(module).__name__) or module)
    result = cli("resume", run, "--steps", "3", "--compile", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert compiled == ["Generator", "Discriminator", "ProjectionHead"]
    assert json.loads((run / "config.json").read_text())["compile"] is True
    assert final_state(run)["config"]["compile"] is True and final_state(run)["step"] == 3
    # the new --precision reaches the resumed run's device check (fp16 needs CUDA), not the recipe refusal
    refused = cli("resume", run, "--steps", "4", "--precision", "fp16", "--device", "cpu")
    assert refused.exit_code == 2 and "--precision fp16 needs a CUDA GPU" in refused.output, refused.output


def test_train_on_an_existing_run_says_how_to_resume(tiny_pair, tmp_path: Path):
    run = tmp_path / "run"
    assert cli("train", *tiny_pair, "--out", run, *tiny(1)).exit_code == 0
    again = cli("train", *tiny_pair, "--out", run, *tiny(1))
    assert again.exit_code == 2 and f"sincut resume {run}" in again.output


def test_non_finite_loss_stops_with_the_loss_and_step(tiny_pair, tmp_path: Path, monkeypatch):
    from sincut.objective import Objective

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
    import sincut.run_folder as ckpt

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


def _train_process(args: list[str], cwd: Path, kill_at: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop(KILL_AT_ENV, None)
    if kill_at:
        env[KILL_AT_ENV] = kill_at
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


def _steps_saved(run: Path) -> list[int]:
    return [int(p.stem.split("_")[1]) for p in sorted((run / "checkpoints").glob("step_*.pt"))]


def test_sigkill_mid_step_mid_checkpoint_and_mid_preview_always_leaves_a_resumable_run(tiny_pair, tmp_path: Path):
    """Kill -9 at three chosen moments (the run kills itself there, see sincut/interrupt.py), check
    what each kill left, resume each time, and the finished run equals one never interrupted, bit for bit."""
    src, tgt = map(str, tiny_pair)
    args = tiny(9, checkpoint_every="1", preview_every="3", keep="10")
    straight = tmp_path / "straight"  # in a child process too: same thread count, same float sums
    proc = _train_process(["train", src, tgt, "--out", str(straight), *args], tmp_path)
    assert proc.wait(timeout=300) == 0, proc.stdout.read()

    run = tmp_path / "killed"
    command = ["train", src, tgt, "--out", str(run), *args]
    resume = ["resume", str(run), "--device", "cpu"]
    # mid-step: step 2 has updated D, not G; checkpoint 1 is the newest
    proc = _train_process(command, tmp_path, kill_at="step:2:after-D")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    assert _steps_saved(run) == [1]
    # mid-checkpoint: step 4's checkpoint is written to its temp file, not yet renamed
    proc = _train_process(resume, tmp_path, kill_at="write:step_0000004.pt")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    assert _steps_saved(run) == [1, 2, 3] and list((run / "checkpoints").glob(".step_0000004.pt.*.tmp"))
    # mid-preview: step 6's preview is in its temp file; step 6's checkpoint is complete
    proc = _train_process(resume, tmp_path, kill_at="write:step_0000006.png")
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, out
    assert _steps_saved(run)[-1] == 6 and list((run / "previews").glob(".step_0000006.png.*.tmp"))
    assert not (run / "previews" / "step_0000006.png").exists()

    proc = _train_process(resume, tmp_path)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert not list(run.rglob("*.tmp"))
    assert_same_training_state(final_state(straight), final_state(run))


def test_a_log_truncated_on_resume_keeps_its_lines_up_to_the_checkpoint_and_drops_a_torn_one(tmp_path: Path):
    """What resume does to log.jsonl and metrics.jsonl: the lines past the checkpoint (the dead process
    wrote them) go, and a line it was writing when it died goes too, instead of stopping the resume."""
    from sincut.run_folder import read_jsonl, truncate_jsonl

    log = tmp_path / "log.jsonl"
    lines = [json.dumps({"step": s, "lr": 0.002 / s, "G": 1 / 3}) for s in (1, 2, 3, 4)]
    log.write_text("\n".join(lines) + '\n{"step": 5, "l', encoding="utf-8")
    kept = truncate_jsonl(log, 3)
    assert [r["step"] for r in kept] == [1, 2, 3] and read_jsonl(log) == kept
    assert log.read_text(encoding="utf-8") == "".join(line + "\n" for line in lines[:3])  # byte for byte
    assert truncate_jsonl(tmp_path / "metrics.jsonl", 3) == [] and not (tmp_path / "metrics.jsonl").exists()
