"""The quick recipe and wall-clock budgets: a generator that starts as the identity, `--minutes`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from sincut.cli import main
from sincut.config import make_config
from sincut.nets import Generator
from sincut.training.schedule import calibration_steps, ema_beta, steps_for_budget


def run(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, prog_name="sincut")


@pytest.mark.parametrize("guide_radius", [0, 4], ids=["plain", "guided"])  # guided: tests/test_guided.py
def test_residual_generator_starts_as_the_identity(guide_radius: int):
    torch.manual_seed(0)
    G = Generator(ngf=2, crop_size=32, n_blocks=4, residual=True, guide_radius=guide_radius)
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    out, _ = G(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, x)
    # and it can learn: the zero layer gets a gradient, so the first step moves the output
    (out - 0.5).pow(2).mean().backward()
    assert G.to_rgb.weight.grad.abs().sum() > 0


def test_steps_for_budget_by_hand():
    # 100 s left, 5 evaluations + 3 at the end at 2 s each -> 84 s of steps at 0.5 s -> 168 more
    assert steps_for_budget(9, 100.0, 0.5, 2.0, 5) == 9 + 168
    assert steps_for_budget(9, 1.0, 0.5, 2.0, 5) == 10  # over budget already: one more step, never zero


def test_one_way_to_say_how_long():
    assert make_config("quick").steps is None and make_config("quick").minutes is not None  # sized by a budget
    cfg = make_config("quick", steps=50)
    assert cfg.steps == 50 and cfg.minutes is None
    cfg = make_config("sincut", minutes=3)
    assert cfg.steps is None and cfg.minutes == 3
    with pytest.raises(ValueError, match="--minutes"):
        make_config("sincut", minutes=3, steps=10)


def test_train_for_minutes_sizes_and_records_the_steps(tiny_pair, tmp_path: Path):
    """--minutes promises a run that ends when the budget does, with the steps it became recorded."""
    src, tgt = tiny_pair
    out = tmp_path / "run"
    started = time.perf_counter()
    result = run("train", src, tgt, "--out", out, "--preset", "quick", "--minutes", "0.25", "--crop-size", "32",
                 "--device", "cpu")
    elapsed = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    # Generous, for a loaded shared CPU (52 s measured with the load average at 4x the 2 cores): twice the
    # 15 s budget plus 40 s of start-up and final outputs; a run that ignored the budget (the unsized
    # 10^9 steps) or sized it from a wrong step time would overshoot by far.
    assert elapsed < 2 * 15 + 40, f"a 15 s budget took {elapsed:.0f} s"
    config = json.loads((out / "config.json").read_text())
    steps = config["steps"]
    quick = make_config("quick")
    timed = calibration_steps(quick)
    assert timed >= quick.r1_every and timed % quick.r1_every == 0  # whole lazy-R1 periods, double backward in
    # a machine too busy for the budget may end it before the calibration steps are done: the first
    # sizing comes after one timed step at least and adds one more
    assert isinstance(steps, int) and steps > 2 and config["minutes"] == 0.25
    assert config["preview_every"] == steps  # one evaluation a minute with the final one: here the final one alone
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["step"] == 0 and not metrics[0]["best"]  # the starting point, never chosen as best
    assert metrics[0]["ssim"] == pytest.approx(1.0)  # the residual G starts as the photo itself
    assert [r["step"] for r in metrics] == [0, steps]
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == steps
    lrs = [r["lr"] for r in log]
    assert lrs[0] == config["lr"] and lrs == sorted(lrs, reverse=True)  # the lr never rises (test_minutes.py)
    assert (out / "result.png").is_file()
    ckpt = torch.load(sorted((out / "checkpoints").glob("step_*.pt"))[-1], weights_only=True)
    assert ckpt["config"]["steps"] == steps  # resume continues the sized schedule


def test_average_half_life_ramps_up_by_hand():
    assert ema_beta(0, 50.0) == 0.0  # nothing to average yet: the first update copies G
    assert ema_beta(10, 50.0) == pytest.approx(0.5)  # ramp: half-life 0.1 x 10 = 1 step
    assert ema_beta(100, 50.0) == pytest.approx(0.5 ** (1 / 10))  # still ramping: 10 steps
    assert ema_beta(1000, 50.0) == pytest.approx(0.5 ** (1 / 50))  # capped at --ema-halflife


def test_weight_average_follows_its_recursion_and_is_what_translate_loads(tiny_pair, tmp_path: Path):
    """--ema-halflife: after every step, average = beta * previous average + (1 - beta) * G, with beta
    from the hand-worked half-lives; checkpoints carry it and `translate` loads it instead of G."""
    from sincut.inference.model import load_generator

    src, tgt = tiny_pair
    out = tmp_path / "run"
    result = run("train", src, tgt, "--out", out, "--steps", "4", "--batch-size", "2", "--crop-size", "32",
                 "--ngf", "2", "--ndf", "4", "--ema-halflife", "20", "--checkpoint-every", "1", "--keep", "9",
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    states = [torch.load(out / "checkpoints" / f"step_{k:07d}.pt", weights_only=True) for k in (1, 2, 3, 4)]
    # half-lives min(20, 0.1 x step) = 0.2, 0.3, 0.4 steps at steps 2, 3, 4
    for previous, state, half_life in zip(states, states[1:], (0.2, 0.3, 0.4)):
        beta = 0.5 ** (1 / half_life)
        for name, g in state["G"].items():
            if not g.is_floating_point():
                continue
            expected = beta * previous["G_average"][name].double() + (1 - beta) * g.double()
            torch.testing.assert_close(state["G_average"][name].double(), expected, rtol=0, atol=1e-6)
    last = states[-1]
    assert any(not torch.equal(last["G"][k], last["G_average"][k]) for k in last["G"])  # a real average
    G, _, step = load_generator(out / "checkpoints" / "step_0000004.pt", torch.device("cpu"))
    assert step == 4
    for name, value in G.state_dict().items():
        assert torch.equal(value, last["G_average"][name]), name
