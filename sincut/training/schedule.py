"""The arithmetic of a run's length and rates: the lr schedule, the weight average's beta, and how many
steps a --minutes budget buys; and the weight average's update. Functions of the config, the step and
the data's epoch length, kept apart from the loop so tests can check them by hand.
"""

from __future__ import annotations

import dataclasses

import torch

from ..config import SINCUT_EPOCHS, TrainConfig
from ..data.folders import FolderPairs
from ..data.patches import SingleImagePair


CALIBRATION_STEPS = 8  # --minutes: at least this many steps timed (after the first) to size the run
UNSIZED_STEPS = 10**9  # --minutes: the step count until it is sized; the lr stays constant meanwhile
END_EVALUATIONS = 3  # --minutes: the last evaluation, result.png and the report cost about this many evaluations
# --ema-halflife: the average's half-life is at most this fraction of the steps done (StyleGAN2's ramp-up),
# so the untrained start weighs little in a short run's average.
EMA_RAMPUP = 0.1


def lr_factor(step: int, total: int, decay_start: float, schedule: str = "linear",
              epoch_steps: int | None = None) -> float:
    """The lr multiplier at 0-based `step` of `total`.

    linear: 1 until `decay_start * total` steps, then linear to zero at `total`, step by step.
    epochs: the paper's code (`lr_policy linear`, stepped once per epoch): with n constant and d decay
    epochs, epoch e (0-based) runs at 1 - max(0, e + 1 - n) / (d + 1), so the last one runs at 1/(d + 1).
    """
    if schedule == "epochs":
        epoch_steps = epoch_steps or total
        n_total = -(-total // epoch_steps)
        n_constant = round(decay_start * total / epoch_steps)
        n_decay = n_total - n_constant
        return 1.0 - max(0, step // epoch_steps + 1 - n_constant) / (n_decay + 1)
    start = int(total * decay_start)
    if step < start:
        return 1.0
    return max(0.0, (total - step) / max(1, total - start))


def ema_beta(done: int, halflife: float) -> float:
    """The share the weight average keeps at the update after step `done` (1-based): half-life
    min(halflife, EMA_RAMPUP * done) steps, so beta = 0.5 ** (1 / half-life); 0 (copy G) before any."""
    steps = min(halflife, EMA_RAMPUP * done)
    return 0.5 ** (1.0 / steps) if steps > 0 else 0.0


@torch.no_grad()
def update_average(average: torch.nn.Module, G: torch.nn.Module, beta: float | None = None,
                   share: torch.Tensor | None = None) -> None:
    """average <- beta * average + (1 - beta) * G, parameter by parameter; buffers are copied. `share`: 1 - beta
    in a device tensor instead (what a captured graph reads at each replay; filled on the host in float64
    as `1.0 - beta` is, so both give the same weights)."""
    weight = 1.0 - beta if share is None else share
    for p_avg, p in zip(average.parameters(), G.parameters()):
        p_avg.lerp_(p, weight)
    for b_avg, b in zip(average.buffers(), G.buffers()):
        b_avg.copy_(b)


def steps_for_budget(done: int, seconds_left: float, seconds_per_step: float, seconds_per_eval: float,
                     evaluations: int) -> int:
    """Total steps that fit a wall-clock budget: the steps still to come, `evaluations` periodic
    evaluations (with their previews), and END_EVALUATIONS' worth at the end (the last evaluation,
    result.png and the report)."""
    spare = seconds_left - (evaluations + END_EVALUATIONS) * seconds_per_eval
    return done + max(1, int(spare / seconds_per_step))


def steps_left_in_budget(seconds_left: float, seconds_per_step: float, seconds_per_eval: float,
                         eval_every: int) -> int:
    """--minutes, re-sizing a sized run: the steps that still fit `seconds_left`. Each step carries its
    share of the periodic evaluation every `eval_every` steps (a share, not a count of evaluations left,
    so the answer moves smoothly with the time left); END_EVALUATIONS' worth is kept for the end.
    0 once the budget is spent: the run ends at the step it has reached."""
    spare = seconds_left - END_EVALUATIONS * seconds_per_eval
    return max(0, int(spare / (seconds_per_step + seconds_per_eval / eval_every)))


def resize_every_seconds(budget_seconds: float) -> float:
    """--minutes: wall seconds between re-sizings, 2% of the budget within 1 to 5 s: often enough that the
    steps planned on a stale step time cost little when the load changes, seldom enough that each
    measurement spans many steps (3.6 s for 3 minutes: about 20 steps of the quick recipe on 2 cores)."""
    return min(5.0, max(1.0, 0.02 * budget_seconds))


def recent_step_time(previous: float, seconds: float, steps: int, half_life: float) -> float:
    """The step time of the last few seconds: the average weighted by wall time, each measurement's weight
    halving every `half_life` seconds after it. `steps` steps just took `seconds`; a measurement that
    lasted one half-life replaces half of `previous`. A slow (or fast) start thus stops counting within a
    few half-lives, where the whole run's average would carry it to the end."""
    if steps <= 0 or seconds <= 0:
        return previous
    kept = 0.5 ** (seconds / half_life)
    return kept * previous + (1 - kept) * seconds / steps


def calibration_steps(config: TrainConfig) -> int:
    """--minutes: steps to time, a whole lazy-R1 period at least, so its double backward is in the average
    (timing 8 R1-free steps of the quick recipe undercounted the step by a fifth and overran the budget)."""
    return max(CALIBRATION_STEPS, config.r1_every if config.r1_gamma > 0 else 1)


def with_concrete_steps(config: TrainConfig, data: SingleImagePair | FolderPairs) -> TrainConfig:
    """Dataset mode without --steps: --epochs x steps per epoch; the epoch length of the 'epochs' lr
    schedule (the folders' epoch, or sincut's --steps / 16). Fixed (and saved) for the whole run.
    A run sized by --minutes has neither yet: _fit calls this again once it has sized the run."""
    if config.steps is None and config.epochs is None:
        return config
    if config.steps is None:
        config = dataclasses.replace(config, steps=config.epochs * data.steps_per_epoch)
    if config.epoch_steps is None:
        per_epoch = data.steps_per_epoch if isinstance(data, FolderPairs) else config.steps // SINCUT_EPOCHS
        config = dataclasses.replace(config, epoch_steps=max(1, per_epoch))
    return config


def fixed_size_from_epoch(config: TrainConfig) -> int | None:
    """Dataset mode: the first (0-based) decay epoch; from there the paper resizes to the crop size,
    so the resize-and-crop jitter stops (its `load_size = crop_size` when epoch > n_epochs).
    None for runs saved before this existed (no epoch length in their config): they keep the jitter."""
    if config.epoch_steps is None or config.steps is None:
        return None
    return round(config.decay_start * config.steps / config.epoch_steps)
