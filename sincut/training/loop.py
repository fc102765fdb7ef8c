"""The training loop, readable top to bottom: sample patches, D step, G + F step, log, save.

source/target image -> PatchSampler (Kornia, on the device) -> G, D, F -> Objective -> Adam.
train() starts a run, resume() continues one, import_official() makes one from the paper's checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from ..config import TrainConfig
from ..data.images import fit_within, save_image, tensor_to_rgb
from ..errors import TrainingFailed, TrainingStopped, UserError, WriteFailed
from ..interrupt import StopRequest
from ..evaluation.monitor import RunMonitor, check_selection_possible
from ..progress import SilentProgress, TrainingProgress
from ..run_folder import (CONFIG_FILE, LATEST_IMAGE, LOG_FILE, METRICS_FILE, RESULT_IMAGE, RUN_FILE, appending_jsonl,
                          checkpoint_dir, final_outputs_written, is_run_dir, load_newest_readable, prepare_run_dir,
                          preview_path, read_json, remove_partial_files, save_checkpoint, save_training_pair,
                          truncate_jsonl, write_config, write_preview, write_run_info)
from ..inference.tiles import DEFAULT_TILE
from ..nets.wrappers import unwrap
from .distributed import init_from_env, shutdown
from .minutes import MinutesSizer
from .schedule import UNSIZED_STEPS, with_concrete_steps
from .trainer import Trainer, check_device_support, make_data, out_of_memory_is_one_line, with_device_precision


# Previews and evaluations translate SOURCE in one pass, downscaled to at most this many pixels (what
# `sincut translate` does in one pass; 1024x768 stays whole). result.png and best.png are full size,
# through the tiled translator. TARGET is only measured (never translated): it may be larger.
EVAL_SOURCE_PIXELS = DEFAULT_TILE * DEFAULT_TILE
EVAL_TARGET_PIXELS = 4 * EVAL_SOURCE_PIXELS


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    result_image: Path
    preview_image: Path
    steps: int
    seconds: float
    final_losses: dict[str, float]


def train(config: TrainConfig, source_path: str | os.PathLike, target_path: str | os.PathLike,
          out: str | os.PathLike, device: torch.device, progress: TrainingProgress | None = None,
          announce: str | None = None) -> TrainResult:
    """Train a model that repaints SOURCE in TARGET's look (two images), or domain A in domain B's
    (two folders); write everything into `out`. `announce` is a line for the user once the inputs have
    passed their checks (an error stays the only line of a run that cannot start)."""
    started = time.perf_counter()  # --minutes counts from here
    world, device = init_from_env(device)
    progress = progress if (progress and world.is_main) else SilentProgress()
    try:
        config.validate()
        config = with_device_precision(config, device)
        check_device_support(config, device, world)
        check_selection_possible(config)
        with out_of_memory_is_one_line(source_path, config):
            data = make_data(config, source_path, target_path, device, world, progress)
            config = with_concrete_steps(config, data)
            run = prepare_run_dir(out) if world.is_main else Path(out)
            if world.is_main:
                write_run_info(run, source_path, target_path)
                write_config(run, config)
            trainer = Trainer.build(config, data, device, world)
            if announce:
                progress.note(announce)
            return _fit(trainer, run, 0, progress, started)
    finally:
        shutdown(world)


def resume(run_dir: str | os.PathLike, device: torch.device, progress: TrainingProgress | None = None,
           overrides: dict | None = None) -> TrainResult:
    """Continue a run from its newest readable checkpoint (from step 0 if it died before the first one).

    Bookkeeping values (--steps, --log-every, ...) may change; anything that changes the objective is
    refused. Log lines past the checkpoint (written by the interrupted process) are dropped, so the
    log reads as one run. A run that trained all its steps but died before its result and report (a full
    disk) only writes those.
    """
    overrides = dict(overrides or {})
    restart_lr = bool(overrides.pop("restart_lr", False))
    run = Path(run_dir)
    if not is_run_dir(run):
        raise UserError(f"{run}: not a sincut run directory (no config.json/run.json); "
                        "start one with `sincut train SOURCE TARGET --out RUN`")
    world, device = init_from_env(device)
    progress = progress if (progress and world.is_main) else SilentProgress()
    try:
        if world.is_main:
            remove_partial_files(run)
        found, state = load_newest_readable(run, progress.note, set_aside=world.is_main)
        saved = TrainConfig.from_dict(state["config"] if state else read_json(run / CONFIG_FILE))
        try:
            config = saved.with_resume_overrides(overrides)
        except ValueError as e:
            raise UserError(f"{run}: {e}") from None
        config = with_device_precision(config, device)  # --precision auto given on resume: this device's
        start = int(state["step"]) if state else 0
        finishing = config.steps is not None and start == config.steps and not final_outputs_written(run)
        if config.steps is not None and start >= config.steps and not finishing:
            raise UserError(f"{run}: already trained {start} of {config.steps} steps; "
                            f"pass --steps N with N > {start} to train longer")
        check_device_support(config, device, world)
        check_selection_possible(config)
        inputs = read_json(run / RUN_FILE)
        with out_of_memory_is_one_line(inputs["source"], config):
            data = make_data(config, inputs["source"], inputs["target"], device, world, progress)
            trainer = Trainer.build(config, data, device, world)
            if state is not None:
                try:
                    trainer.load_state(state)
                except (RuntimeError, KeyError, ValueError) as e:
                    raise UserError(f"{found}: does not match this run's {config.preset} networks "
                                    f"({str(e).splitlines()[0][:160]})") from None
                _keep_lr_from_rising(trainer, state, start, restart_lr, progress)
            if world.is_main:
                truncate_jsonl(run / LOG_FILE, start)
                if finishing:  # the last evaluation is made again with the final images
                    truncate_jsonl(run / METRICS_FILE, start - 1)
                write_config(run, config)
            return _fit(trainer, run, start, progress)
    finally:
        shutdown(world)


def _keep_lr_from_rising(trainer: Trainer, state: dict, start: int, restart_lr: bool,
                         progress: TrainingProgress) -> None:
    """A new --steps recomputes the schedule; where that would raise the lr above the run's last lr
    (a decayed run given more steps), hold the lr there until the schedule falls below it, or with
    --restart-lr follow the new schedule and say that the lr rises."""
    saved_lr = float(state.get("lr", trainer.config.lr))
    wanted = trainer.lr_at(start)
    if wanted <= saved_lr * (1 + 1e-6) or trainer.config.lr <= 0:
        return
    if restart_lr:
        trainer.lr_ceiling = 1.0
        progress.note(f"warning: --restart-lr: the lr rises from {saved_lr:.3g} to {wanted:.3g} at step {start}")
    else:
        trainer.lr_ceiling = saved_lr / trainer.config.lr
        progress.note(f"lr stays at {saved_lr:.3g} (the new --steps schedule would raise it to {wanted:.3g}); it "
                      "follows the schedule once that falls below; --restart-lr raises it instead")


class LossTally:
    """Every step's losses summed on the device, so the check at a log interval sees the steps between too,
    while the host reads them once there (a step itself never waits for the device)."""

    def __init__(self) -> None:
        self.sums: dict[str, torch.Tensor] = {}
        self.since = 0  # the first step of the interval, 1-based

    def add(self, parts: dict[str, torch.Tensor], done: int) -> None:
        self.since = self.since or done
        for name, value in parts.items():
            value = value.detach().float()
            self.sums[name] = self.sums[name] + value if name in self.sums else value.clone()

    def check(self, parts: dict[str, torch.Tensor], step: int) -> dict[str, float]:
        """The last step's losses (what the log records), read with the interval's sums in one transfer; a
        TrainingFailed naming the loss if any step since the last check made it non-finite."""
        names = list(parts)
        values = torch.stack([*(parts[n].detach().float() for n in names), *self.sums.values()]).tolist()
        losses, sums = dict(zip(names, values)), dict(zip(self.sums, values[len(names):]))
        since, self.sums, self.since = self.since, {}, 0
        for name, value in losses.items():
            if not math.isfinite(value):
                raise TrainingFailed(f"loss {name} became {value} at step {step}; the last good checkpoint is "
                                     "kept; try a lower --lr (a new run) or resume from that checkpoint")
        for name, value in sums.items():
            if not math.isfinite(value):
                raise TrainingFailed(f"loss {name} became {value} between steps {since} and {step}; the last good "
                                     "checkpoint is kept; try a lower --lr (a new run) or resume from that checkpoint")
        return losses


def _fit(trainer: Trainer, run: Path, start: int, progress: TrainingProgress,
         started: float | None = None, clock: Callable[[], float] = time.perf_counter) -> TrainResult:
    """The loop: steps start..config.steps, logging, previews, checkpoints, graceful stop.

    With --minutes (config.steps None) the loop first evaluates the untrained model (timing an
    evaluation), runs calibration_steps() timed steps at the constant lr, then sizes the run to the
    budget and keeps sizing it every few seconds from the recent step time (training/minutes.py),
    recording the total in config.json and the checkpoints, so a resume continues the same schedule.
    `clock` (seconds) times all of it; `started` is its reading when the budget began.
    """
    config = trainer.config
    main = trainer.world.is_main
    t_start = clock()
    started = t_start if started is None else started
    sizer = MinutesSizer(config.minutes, start, started, clock) if config.steps is None else None
    if sizer is not None:
        if trainer.world.active:
            raise UserError("--minutes sizes a run from one process's timing; under torchrun give --steps")
        trainer.config = config = dataclasses.replace(config, steps=UNSIZED_STEPS)
    what = f"resuming at step {start}" if start else "training"
    processes = f" x {trainer.world.size} processes" if trainer.world.active else ""
    device = next(unwrap(trainer.G).parameters()).device
    length = f"{config.minutes:g} minutes" if sizer is not None else f"{config.steps:,} steps"
    progress.note(f"sincut {what}: preset {config.preset}, {length}, batch {config.batch_size}{processes}"
                  f" x {config.crop_size} px, on {device.type} in {config.precision}; run directory {run}")
    full_source, full_target = trainer.data.preview_images()
    source = fit_within(full_source, EVAL_SOURCE_PIXELS).to(device)
    target = fit_within(full_target, EVAL_TARGET_PIXELS).to(device)
    # SOURCE larger than the evaluation size: result.png and best.png come from the tiled translator.
    full_rgb = tensor_to_rgb(full_source) if source.shape[-2:] != full_source.shape[-2:] else None
    del full_source, full_target
    full_size: dict[int, np.ndarray] = {}

    def full_translation(step: int) -> np.ndarray:  # at most once per step (best.png and result.png)
        if step not in full_size:
            full_size.clear()
            full_size[step] = trainer.translate_full(full_rgb)
        return full_size[step]

    if main:
        save_training_pair(run, source, target)  # the report shows them; the run folder stands on its own
        monitor = RunMonitor(run, config, source, target, progress, started,  # metrics.jsonl, best.pt
                             full_translation if full_rgb is not None else None)
        monitor.resume_from(start)

    def preview(step: int, translated: torch.Tensor) -> Path:
        write_preview(preview_path(run, step), source, translated, target)
        return write_preview(run / LATEST_IMAGE, source, translated, target)

    losses: dict[str, float] = {}
    tally = LossTally()
    progress.start(None if sizer is not None else config.steps, start)
    if sizer is not None:  # the starting point, and what one evaluation costs on this machine
        t0 = clock()
        monitor.evaluate(0, trainer.translate(source), trainer.state, candidate=False)
        sizer.seconds_per_eval = clock() - t0
    log_path = run / LOG_FILE if main else Path(os.devnull)
    with appending_jsonl(log_path) as append_log, StopRequest() as stop:
        try:
            step = start
            while step < config.steps:
                t0 = clock()
                parts = trainer.step(step)
                done = step + 1
                tally.add(parts, done)
                if sizer is not None and done == start + 1:
                    sizer.timed_from = clock()  # the first step pays one-off costs
                checkpointing = done % config.checkpoint_every == 0 or stop.requested
                if sizer is not None and sizer.due(done, config, checkpointing):
                    # before any checkpoint, which must hold the current total; the losses' sync makes
                    # the clock see the steps done (a GPU's queue may run ahead)
                    losses = tally.check(parts, done)
                    config = sizer.size(done, trainer, monitor, run, progress)
                    checkpointing = done % config.checkpoint_every == 0 or stop.requested
                logging = done % config.log_every == 0 or done == config.steps or step == start
                if logging or checkpointing:  # with a sizing's, the only host-device syncs of a step
                    losses = tally.check(parts, done)
                if logging:
                    record = {"step": done, "lr": trainer.lr_value,
                              "seconds_per_step": round(clock() - t0, 4), **losses}
                    append_log(record)
                progress.step(step, losses if logging else None)
                if checkpointing and done < config.steps:
                    path = save_checkpoint(run, done, trainer.state(), keep=config.keep_checkpoints) if main else run
                    if stop.requested:
                        raise TrainingStopped(f"Stopped at step {done} of {config.steps}; checkpoint saved to "
                                              f"{path}. Continue with: sincut resume {run}", stop.exit_code)
                if sizer is None:
                    previewing, evaluating = done % config.preview_every == 0, main and monitor.due(done)
                else:  # --minutes: spaced from the previous one, as the total moves
                    previewing = evaluating = sizer.preview_due(done, config)
                if main and (previewing or evaluating) and done < config.steps:
                    evaluating_from = clock()
                    translated = trainer.translate(source)  # one translation serves preview and metrics
                    if previewing:
                        preview(done, translated)
                    if evaluating:
                        monitor.evaluate(done, translated, trainer.state)
                    if sizer is not None:
                        sizer.evaluated(done, clock() - evaluating_from)
                step = done
        finally:
            progress.finish()

    if not main:
        return TrainResult(run, run, run, run, config.steps - start, clock() - t_start, losses)
    ckpt = save_checkpoint(run, config.steps, trainer.state(), keep=config.keep_checkpoints)
    translated = trainer.translate(source)
    latest = preview(config.steps, translated)
    monitor.evaluate(config.steps, translated, trainer.state)
    if full_rgb is None:
        result = save_image(translated, run / RESULT_IMAGE)
    else:
        result = save_image(Image.fromarray(full_translation(config.steps), "RGB"), run / RESULT_IMAGE)
    monitor.write_report()
    if getattr(trainer.data, "bad_files", None):
        progress.note(f"{len(trainer.data.bad_files)} unreadable file(s) were skipped (listed above)")
    return TrainResult(run, ckpt, result, latest, config.steps - start, clock() - t_start, losses)


def import_official(folder: str | os.PathLike, out: str | os.PathLike, device: torch.device,
                    source: str | os.PathLike | None = None, target: str | os.PathLike | None = None,
                    preset: str | None = None, epoch: int | None = None) -> Path:
    """A run directory from a checkpoint of the paper's code (G, D and F), so `sincut resume` trains it on
    with our loop. Its recipe comes from `train_opt.txt` (else from the weights and `preset`); the step
    is `epoch` (default: the file's epoch number, 0 for `latest`) x steps per epoch. Adam's moments are
    not in the paper's checkpoints: the optimisers start fresh."""
    from ..official import (dataroot_inputs, find_official, load_official_state, official_config, to_our_state,
                            with_widths_of)

    ckpt = find_official(folder)
    prefix = ckpt.G.name[: -len("_net_G.pth")]
    if ckpt.D is None or ckpt.F is None:
        raise UserError(f"{ckpt.G.parent}: no {prefix}_net_D.pth and {prefix}_net_F.pth beside {ckpt.G.name}; "
                        "import needs G, D and F (translate and export need only G)")
    states = {"G": load_official_state(ckpt.G), "D": load_official_state(ckpt.D), "F": load_official_state(ckpt.F)}
    config = official_config(ckpt, states["G"], preset)
    if not ckpt.options:
        config = with_widths_of(config, states["D"], states["F"], ckpt.G)
    if source is None or target is None:
        found = dataroot_inputs(ckpt, config.preset)
        if found is None:
            raise UserError(f"{ckpt.G.parent}: its training images are not at the options' dataroot "
                            f"({ckpt.options.get('dataroot', 'no train_opt.txt')}); pass --source and --target")
        source, target = source or found[0], target or found[1]
    data = make_data(config, source, target, device)
    config = with_concrete_steps(config, data)
    done = (ckpt.epoch or 0) if epoch is None else epoch
    step = min(done * config.epoch_steps, config.steps)
    run = prepare_run_dir(out)
    trainer = Trainer.build(config, data, device)
    for name, net, path in (("G", trainer.G, ckpt.G), ("D", trainer.D, ckpt.D), ("F", trainer.F, ckpt.F)):
        module = unwrap(net)
        module.load_state_dict(to_our_state(name, states[name], module, config, str(path)))
    state = trainer.state()
    state["lr"] = trainer.lr_at(max(0, step - 1))
    try:
        write_run_info(run, source, target, imported_from=str(ckpt.G.resolve()))
        write_config(run, config)
        save_checkpoint(run, step, state, keep=config.keep_checkpoints)
    except WriteFailed as e:  # a half-made run would be refused by the rerun (and resume would start afresh)
        for made in (run / CONFIG_FILE, run / RUN_FILE):
            made.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            checkpoint_dir(run).rmdir()
        raise e.retold(f"nothing was imported; {e.remedy}, then run the same `sincut import` again") from None
    return run
