"""The training loop, readable top to bottom: sample patches, D step, G + F step, log, save.

source/target image -> PatchSampler (Kornia, on the device) -> G, D, F -> Objective -> Adam.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .checkpoint import list_checkpoints, load_checkpoint, remove_partial_files, save_checkpoint
from .config import DATASET_PRESETS, TrainConfig
from .data.folders import FolderPairs
from .data.images import atomic_write, fit_within, load_image, save_image, side_by_side, tensor_to_rgb
from .data.patches import SingleImagePair
from .distributed import World, init_from_env, shutdown, unwrap, wrap
from .errors import TrainingFailed, TrainingStopped, UserError
from .interrupt import StopRequest, kill_point
from .losses import Forward, Objective
from .monitor import RunMonitor
from .nets import ProjectionHead, build_discriminator, build_generator
from .progress import SilentProgress, TrainingProgress
from .report import save_inputs, write_report
from .tiles import DEFAULT_TILE
from .translate import Translator, translate_tensor

PREVIEW_HEIGHT = 384
# Previews and evaluations translate SOURCE in one pass, downscaled to at most this many pixels (what
# `sincut translate` does in one pass; 1024x768 stays whole). result.png and best.png are full size,
# through the tiled translator. TARGET is only measured (never translated): it may be larger.
EVAL_SOURCE_PIXELS = DEFAULT_TILE * DEFAULT_TILE
EVAL_TARGET_PIXELS = 4 * EVAL_SOURCE_PIXELS
RESULT_TILE = DEFAULT_TILE  # tile of the full-size translations (the translate command's default)
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    result_image: Path
    preview_image: Path
    steps: int
    seconds: float
    final_losses: dict[str, float]


def lr_factor(step: int, total: int, decay_start: float) -> float:
    """1 until `decay_start * total` steps, then linear to zero at `total` (the paper's 'linear' policy)."""
    start = int(total * decay_start)
    if step < start:
        return 1.0
    return max(0.0, (total - step) / max(1, total - start))


def capture_rng(sampler_rng: torch.Generator) -> dict:
    """Python, NumPy, torch CPU/CUDA and the sampler's generator, in weights_only-loadable types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "torch": torch.get_rng_state(),
        "sampler": sampler_rng.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, sampler_rng: torch.Generator) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    sampler_rng.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def prepare_run_dir(out: str | os.PathLike) -> Path:
    """Create the run directory; refuse one that already holds a run, so nothing is overwritten."""
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise UserError(f"{run}: exists and is a file; pass a folder for --out")
    if (run / "checkpoints").exists() or (run / "config.json").exists():
        raise UserError(f"{run}: already holds a training run; continue it with `sincut resume {run}`, "
                        "or pass a new --out folder")
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{run}: cannot write there ({e.strerror}); pass a writable --out folder") from None
    return run


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e}); is this a sincut run directory?") from None


def write_preview(path: Path, source: torch.Tensor, translated: torch.Tensor, target: torch.Tensor) -> Path:
    sheet = side_by_side([source[0], translated[0], target[0]], PREVIEW_HEIGHT)
    return save_image(sheet, path)


@dataclass
class Trainer:
    """Everything one training run holds: the data source, the three networks (DDP-wrapped when
    several processes train), the objective, the optimisers and the random generator that drives
    sampling, noise and NCE locations."""

    config: TrainConfig
    data: SingleImagePair | FolderPairs
    G: torch.nn.Module
    D: torch.nn.Module
    F: torch.nn.Module
    objective: Objective
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    rng: torch.Generator
    world: World
    scalers: dict | None = None  # fp16 only: one GradScaler each for the G and D updates

    @classmethod
    def build(cls, config: TrainConfig, data: SingleImagePair | FolderPairs, device: torch.device,
              world: World = World()) -> "Trainer":
        if device.type == "cuda":  # fixed shapes: let cuDNN pick the fastest kernels; TF32 matmuls/convs
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        # Networks, built on the CPU from the seed so every device and process starts from the same weights.
        # Python's and NumPy's global generators too: left unseeded they start from the OS's entropy, so a
        # checkpoint's copy of them (restored on resume) would differ between two runs of one seed.
        random.seed(config.seed)
        np.random.seed(config.seed)
        torch.manual_seed(config.seed)
        G = build_generator(config)
        D = build_discriminator(config)
        F_head = ProjectionHead(G.feature_channels(config.nce_layers), nc=config.projection_dim,
                                init_gain=config.init_gain)
        # channels_last: oneDNN and cuDNN run these convolutions markedly faster in NHWC.
        G = G.to(device, memory_format=torch.channels_last)
        D = D.to(device, memory_format=torch.channels_last)
        F_head = F_head.to(device)
        if config.compile:
            G, D, F_head = torch.compile(G), torch.compile(D), torch.compile(F_head)
        G, D, F_head = wrap(G, world, device), wrap(D, world, device), wrap(F_head, world, device)
        rng = torch.Generator(device=device).manual_seed(config.seed + world.rank)
        objective = Objective(
            G, D, F_head, nce_layers=config.nce_layers, num_patches=config.num_patches,
            nce_temperature=config.nce_temperature, nce_negatives_from_minibatch=config.nce_negatives_from_minibatch,
            lambda_gan=config.lambda_gan, lambda_nce=config.lambda_nce, nce_identity=config.nce_identity,
            lambda_identity=config.lambda_identity, r1_gamma=config.r1_gamma, r1_every=config.r1_every,
            gan_mode=config.gan_mode, flip_equivariance=config.flip_equivariance, generator=rng,
        )
        betas = (config.beta1, config.beta2)
        opt_G = torch.optim.Adam([*G.parameters(), *F_head.parameters()], lr=config.lr, betas=betas)
        opt_D = torch.optim.Adam(D.parameters(), lr=config.lr, betas=betas)
        trainer = cls(config, data, G, D, F_head, objective, opt_G, opt_D, rng, world)
        if config.precision == "fp16":  # loss scaling keeps small fp16 gradients from flushing to zero
            trainer.scalers = {"G": torch.amp.GradScaler("cuda"), "D": torch.amp.GradScaler("cuda")}
        return trainer

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        return torch.autocast(self.rng.device.type, dtype=dtype)

    def _update(self, loss: torch.Tensor, opt: torch.optim.Optimizer, name: str) -> None:
        if self.scalers is None:
            loss.backward()
            opt.step()
            return
        scaler = self.scalers[name]
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    def set_lr(self, step: int) -> None:
        lr = self.config.lr * lr_factor(step, self.config.steps, self.config.decay_start)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def sample(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        src, tgt = self.data.sample(step, self.rng)
        nhwc = torch.channels_last
        return src.contiguous(memory_format=nhwc), tgt.contiguous(memory_format=nhwc)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> Forward:
        with self.autocast():
            return self.objective.forward(src, tgt)

    def discriminator_step(self, fwd: Forward, step: int = 0) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            loss, parts = self.objective.discriminator_loss(fwd, step)
        self._update(loss, self.opt_D, "D")
        return parts

    def generator_step(self, fwd: Forward) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(False)  # D's weights get no gradient from the G loss
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            loss, parts = self.objective.generator_loss(fwd)
        self._update(loss, self.opt_G, "G")
        return parts

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """One training step as in the paper: G forward once, update D, then update G and F."""
        self.set_lr(step)
        src, tgt = self.sample(step)
        fwd = self.forward(src, tgt)
        d_parts = self.discriminator_step(fwd, step)
        kill_point(f"step:{step + 1}:after-D")
        return {**d_parts, **self.generator_step(fwd)}

    def state(self) -> dict:
        """Everything needed to continue bit for bit: weights, optimiser moments, every RNG state."""
        return {
            "config": asdict(self.config), "G": unwrap(self.G).state_dict(), "D": unwrap(self.D).state_dict(),
            "F": unwrap(self.F).state_dict(), "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "lr": self.opt_G.param_groups[0]["lr"], "rng": capture_rng(self.rng),
        }

    def load_state(self, state: dict) -> None:
        unwrap(self.G).load_state_dict(state["G"])
        unwrap(self.D).load_state_dict(state["D"])
        unwrap(self.F).load_state_dict(state["F"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        restore_rng(state["rng"], self.rng)

    def translate(self, image: torch.Tensor) -> torch.Tensor:
        G = unwrap(self.G)
        G.eval()
        out = translate_tensor(G, image, seed=self.config.seed)
        G.train()
        return out

    def translate_full(self, rgb: np.ndarray) -> np.ndarray:
        """An HxWx3 uint8 image of any size, in tiles of bounded memory: what `sincut translate` gives."""
        G = unwrap(self.G)
        G.eval()
        try:
            return Translator(G, next(G.parameters()).device, tile=RESULT_TILE, seed=self.config.seed).translate(rgb)
        finally:
            G.train()


@contextlib.contextmanager
def out_of_memory_is_one_line(source: str | os.PathLike, config: TrainConfig):
    """Running out of memory (CPU or GPU, in torch, NumPy or Pillow) becomes one TrainingFailed line
    that names the image and what to change, never a traceback."""
    try:
        yield
    except (MemoryError, RuntimeError) as e:
        if not isinstance(e, MemoryError) and not any(s in str(e).lower() for s in _OUT_OF_MEMORY):
            raise
        raise TrainingFailed(f"{source}: out of memory while training on it ({type(e).__name__}); "
                             f"pass a smaller --batch-size (now {config.batch_size}) or --crop-size (now "
                             f"{config.crop_size}), downscale the image, or free memory; the newest "
                             "checkpoint (if any) is kept for `sincut resume`") from None


def check_device_support(config: TrainConfig, device: torch.device) -> None:
    if config.precision == "fp16" and device.type != "cuda":
        raise UserError(f"--precision fp16 needs a CUDA GPU (this run is on {device.type}); use --precision bf16")


def make_data(config: TrainConfig, source: str | os.PathLike, target: str | os.PathLike, device: torch.device,
              world: World = World(), progress: TrainingProgress | None = None) -> SingleImagePair | FolderPairs:
    """Two image files: the single-image patch sampler. Two folders: the unpaired folder stream."""
    progress = progress or SilentProgress()
    if config.preset in DATASET_PRESETS or Path(source).is_dir():
        return FolderPairs(source, target, load_size=config.load_size, crop_size=config.crop_size,
                           batch_size=config.batch_size, flip=config.flip, seed=config.seed, device=device,
                           rank=world.rank, world_size=world.size, on_bad_file=progress.note)
    images = {source: load_image(source), target: load_image(target)}
    _warn_if_smaller_than_crop(progress, config, images)
    src, tgt = (im.to(device) for im in images.values())
    return SingleImagePair(src, tgt, crop_size=config.crop_size, zoom=(config.zoom_min, config.zoom_max),
                           flip=config.flip, batch_size=config.batch_size)


def with_concrete_steps(config: TrainConfig, data: SingleImagePair | FolderPairs) -> TrainConfig:
    """Dataset mode without --steps: --epochs x steps per epoch, fixed (and saved) for the whole run."""
    if config.steps is not None:
        return config
    return dataclasses.replace(config, steps=config.epochs * data.steps_per_epoch)


def train(config: TrainConfig, source_path: str | os.PathLike, target_path: str | os.PathLike,
          out: str | os.PathLike, device: torch.device, progress: TrainingProgress | None = None) -> TrainResult:
    """Train a model that repaints SOURCE in TARGET's look (two images), or domain A in domain B's
    (two folders); write everything into `out`."""
    world, device = init_from_env(device)
    progress = progress if (progress and world.is_main) else SilentProgress()
    try:
        config.validate()
        check_device_support(config, device)
        with out_of_memory_is_one_line(source_path, config):
            data = make_data(config, source_path, target_path, device, world, progress)
            config = with_concrete_steps(config, data)
            run = prepare_run_dir(out) if world.is_main else Path(out)
            if world.is_main:
                inputs = {"source": str(Path(source_path).resolve()), "target": str(Path(target_path).resolve())}
                atomic_write(run / "run.json", lambda f: f.write(json.dumps(inputs, indent=2).encode()))
                atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
            trainer = Trainer.build(config, data, device, world)
            return _fit(trainer, run, 0, progress)
    finally:
        shutdown(world)


def _warn_if_smaller_than_crop(progress: TrainingProgress, config: TrainConfig, images: dict) -> None:
    for path, image in images.items():
        h, w = image.shape[2:]
        if min(h, w) < config.crop_size:
            progress.note(f"warning: {path} is {w}x{h}, smaller than the {config.crop_size} px patches; "
                          "it is upscaled to fit (pass a smaller --crop-size to avoid that)")


def resume(run_dir: str | os.PathLike, device: torch.device, progress: TrainingProgress | None = None,
           overrides: dict | None = None) -> TrainResult:
    """Continue a run from its newest checkpoint (from step 0 if it died before the first one).

    Bookkeeping values (--steps, --log-every, ...) may change; anything that changes the objective is
    refused. Log lines past the checkpoint (written by the interrupted process) are dropped, so the
    log reads as one run.
    """
    run = Path(run_dir)
    if not (run / "config.json").is_file() or not (run / "run.json").is_file():
        raise UserError(f"{run}: not a sincut run directory (no config.json/run.json); "
                        "start one with `sincut train SOURCE TARGET --out RUN`")
    world, device = init_from_env(device)
    progress = progress if (progress and world.is_main) else SilentProgress()
    try:
        if world.is_main:
            remove_partial_files(run)
        found = list_checkpoints(run)
        state = load_checkpoint(found[-1]) if found else None
        saved = TrainConfig.from_dict(state["config"] if state else _read_json(run / "config.json"))
        try:
            config = saved.with_resume_overrides(overrides or {})
        except ValueError as e:
            raise UserError(f"{run}: {e}") from None
        start = int(state["step"]) if state else 0
        if start >= config.steps:
            raise UserError(f"{run}: already trained {start} of {config.steps} steps; "
                            f"pass --steps N with N > {start} to train longer")
        check_device_support(config, device)
        inputs = _read_json(run / "run.json")
        with out_of_memory_is_one_line(inputs["source"], config):
            data = make_data(config, inputs["source"], inputs["target"], device, world, progress)
            trainer = Trainer.build(config, data, device, world)
            if state is not None:
                try:
                    trainer.load_state(state)
                except (RuntimeError, KeyError, ValueError) as e:
                    raise UserError(f"{found[-1]}: does not match this run's {config.preset} networks "
                                    f"({str(e).splitlines()[0][:160]})") from None
            if world.is_main:
                _truncate_log(run / "log.jsonl", start)
                atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
            return _fit(trainer, run, start, progress)
    finally:
        shutdown(world)


def _truncate_log(path: Path, last_step: int) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= last_step]
    atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode()))


def _check_finite(parts: dict[str, torch.Tensor], step: int) -> dict[str, float]:
    losses = {k: float(v.detach()) for k, v in parts.items()}
    for name, value in losses.items():
        if not math.isfinite(value):
            raise TrainingFailed(f"loss {name} became {value} at step {step}; the last good checkpoint is "
                                 "kept; try a lower --lr (a new run) or resume from that checkpoint")
    return losses


def _fit(trainer: Trainer, run: Path, start: int, progress: TrainingProgress) -> TrainResult:
    """The loop: steps start..config.steps, logging, previews, checkpoints, graceful stop."""
    config = trainer.config
    main = trainer.world.is_main
    t_start = time.perf_counter()
    what = f"resuming at step {start}" if start else "training"
    processes = f" x {trainer.world.size} processes" if trainer.world.active else ""
    device = next(unwrap(trainer.G).parameters()).device
    progress.note(f"sincut {what}: preset {config.preset}, {config.steps:,} steps, batch {config.batch_size}{processes}"
                  f" x {config.crop_size} px, on {device.type}; run directory {run}")
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
        save_inputs(run, source, target)  # the report shows them; the run folder stands on its own
        monitor = RunMonitor(run, config, source, target, progress, t_start,  # metrics.jsonl, best.pt
                             full_translation if full_rgb is not None else None)
        monitor.resume_from(start)

    def preview(step: int, translated: torch.Tensor) -> Path:
        write_preview(run / "previews" / f"step_{step:07d}.png", source, translated, target)
        return write_preview(run / "latest.png", source, translated, target)

    losses: dict[str, float] = {}
    progress.start(config.steps, start)
    log_path = run / "log.jsonl" if main else Path(os.devnull)
    with open(log_path, "a", encoding="utf-8") as log_file, StopRequest() as stop:
        try:
            for step in range(start, config.steps):
                t0 = time.perf_counter()
                parts = trainer.step(step)
                done = step + 1
                logging = done % config.log_every == 0 or done == config.steps or step == start
                checkpointing = done % config.checkpoint_every == 0 or stop.requested
                if logging or checkpointing:  # the only host-device syncs of a step
                    losses = _check_finite(parts, done)
                if logging:
                    record = {"step": done, "lr": trainer.opt_G.param_groups[0]["lr"],
                              "seconds_per_step": round(time.perf_counter() - t0, 4), **losses}
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                progress.step(step, losses if logging else None)
                if checkpointing and done < config.steps:
                    path = save_checkpoint(run, done, trainer.state(), keep=config.keep_checkpoints) if main else run
                    if stop.requested:
                        raise TrainingStopped(f"Stopped at step {done} of {config.steps}; checkpoint saved to "
                                              f"{path}. Continue with: sincut resume {run}", stop.exit_code)
                previewing = done % config.preview_every == 0
                if main and (previewing or monitor.due(done)) and done < config.steps:
                    translated = trainer.translate(source)  # one translation serves preview and metrics
                    if previewing:
                        preview(done, translated)
                    if monitor.due(done):
                        monitor.evaluate(done, translated, trainer.state)
        finally:
            progress.finish()

    if not main:
        return TrainResult(run, run, run, run, config.steps - start, time.perf_counter() - t_start, losses)
    ckpt = save_checkpoint(run, config.steps, trainer.state(), keep=config.keep_checkpoints)
    translated = trainer.translate(source)
    preview_path = preview(config.steps, translated)
    monitor.evaluate(config.steps, translated, trainer.state)
    if full_rgb is None:
        result = save_image(translated, run / "result.png")
    else:
        result = save_image(Image.fromarray(full_translation(config.steps), "RGB"), run / "result.png")
    write_report(run)
    if getattr(trainer.data, "bad_files", None):
        progress.note(f"{len(trainer.data.bad_files)} unreadable file(s) were skipped (listed above)")
    return TrainResult(run, ckpt, result, preview_path, config.steps - start, time.perf_counter() - t_start, losses)
