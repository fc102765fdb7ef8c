"""The training loop, readable top to bottom: sample patches, D step, G + F step, log, save.

source/target image -> PatchSampler (Kornia, on the device) -> G, D, F -> Objective -> Adam.
"""

from __future__ import annotations

import contextlib
import copy
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
from .colour import fit_colour_transfer
from .config import DATASET_PRESETS, SINCUT_EPOCHS, TrainConfig
from .data.folders import FolderPairs
from .data.images import atomic_write, fit_within, load_image_compact, save_image, side_by_side, tensor_to_rgb
from .data.patches import SingleImagePair
from .distributed import World, init_from_env, shutdown, unwrap, wrap
from .errors import TrainingFailed, TrainingStopped, UserError
from .interrupt import StopRequest, kill_point
from .losses import Forward, Objective
from .monitor import RunMonitor, check_selection_possible
from .nets import ProjectionHead, build_discriminator, build_generator, memory_format
from .progress import SilentProgress, TrainingProgress
from .report import save_inputs, write_report
from .tiles import DEFAULT_TILE
from .translate import Translator, cpu_has_bf16_kernels, translate_tensor

PREVIEW_HEIGHT = 384
CALIBRATION_STEPS = 8  # --minutes: at least this many steps timed (after the first) to size the run
UNSIZED_STEPS = 10**9  # --minutes: the step count until it is sized; the lr stays constant meanwhile
# Previews and evaluations translate SOURCE in one pass, downscaled to at most this many pixels (what
# `sincut translate` does in one pass; 1024x768 stays whole). result.png and best.png are full size,
# through the tiled translator. TARGET is only measured (never translated): it may be larger.
EVAL_SOURCE_PIXELS = DEFAULT_TILE * DEFAULT_TILE
EVAL_TARGET_PIXELS = 4 * EVAL_SOURCE_PIXELS
# Memory budget of the full-size translations (result.png, best.png) of a SOURCE larger than the
# evaluation size: the same rule as `sincut translate --max-memory` (budget.py), with a smaller fixed
# budget than the translate command's default because training holds the patch sampler, the networks
# and their optimisers beside it. 0.6 GiB is the peak measured for the former fixed 640 px tile, which kept
# training on a 6000x4000 photo under 3 GiB; the default generator (1138 bytes per pixel measured) gets its largest
# tiles from it (742 px). `sincut translate --max-memory 600MiB` gives the same pixels.
RESULT_MEMORY = 600 * 2**20
# --ema-halflife: the average's half-life is at most this fraction of the steps done (StyleGAN2's ramp-up),
# so the untrained start weighs little in a short run's average.
EMA_RAMPUP = 0.1
# --colour-init fits its map on SOURCE and TARGET downscaled to at most this many pixels.
COLOUR_FIT_PIXELS = 1024 * 1024
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
def update_average(average: torch.nn.Module, G: torch.nn.Module, beta: float) -> None:
    """average <- beta * average + (1 - beta) * G, parameter by parameter; buffers are copied."""
    for p_avg, p in zip(average.parameters(), G.parameters()):
        p_avg.lerp_(p, 1.0 - beta)
    for b_avg, b in zip(average.buffers(), G.buffers()):
        b_avg.copy_(b)


def steps_for_budget(done: int, seconds_left: float, seconds_per_step: float, seconds_per_eval: float,
                     evaluations: int) -> int:
    """Total steps that fit a wall-clock budget: the steps still to come, `evaluations` periodic
    evaluations (with their previews), and about three evaluations' worth at the end (the last
    evaluation, result.png and the report)."""
    spare = seconds_left - (evaluations + 3) * seconds_per_eval
    return done + max(1, int(spare / seconds_per_step))


def calibration_steps(config: TrainConfig) -> int:
    """--minutes: steps to time, a whole lazy-R1 period at least, so its double backward is in the average
    (timing 8 R1-free steps of the quick recipe undercounted the step by a fifth and overran the budget)."""
    return max(CALIBRATION_STEPS, config.r1_every if config.r1_gamma > 0 else 1)


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


def fit_colour_init(G: torch.nn.Module, config: TrainConfig, data: SingleImagePair | FolderPairs) -> None:
    """--colour-init: fit G's colour transfer from SOURCE to TARGET (both whole, downscaled to at most
    COLOUR_FIT_PIXELS: the colour distributions, not the detail, matter), on the CPU, seeded by --seed.
    A resumed run refits the same map, and its checkpoint's copy replaces it anyway."""
    if not isinstance(data, SingleImagePair):
        raise UserError(f"--colour-init {config.colour_init} fits one photo's colours to one painting's; it needs "
                        "two image files, not folders: give --colour-init none")
    source, target = (fit_within(image, COLOUR_FIT_PIXELS).cpu() for image in data.preview_images())
    fitted = fit_colour_transfer(config.colour_init, source, target, seed=config.seed)
    G.colour.load_state_dict(fitted.state_dict())


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
    lr_ceiling: float = 1.0  # largest lr factor from here on; set by resume when --steps would raise the lr
    G_average: torch.nn.Module | None = None  # --ema-halflife: the running average of G that translates

    @classmethod
    def build(cls, config: TrainConfig, data: SingleImagePair | FolderPairs, device: torch.device,
              world: World = World()) -> "Trainer":
        if isinstance(data, FolderPairs):
            data.fixed_size_from_epoch = fixed_size_from_epoch(config)
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
        if config.colour_init != "none":
            fit_colour_init(G, config, data)
        D = build_discriminator(config)
        F_head = ProjectionHead(G.feature_channels(config.nce_layers), nc=config.projection_dim,
                                init_gain=config.init_gain)
        # channels_last where it measures faster (cuDNN; oneDNN unless instance norm): nets.memory_format.
        G = G.to(device, memory_format=memory_format(G, device))
        D = D.to(device, memory_format=memory_format(D, device))
        F_head = F_head.to(device)
        if config.compile:
            G, D, F_head = torch.compile(G), torch.compile(D), torch.compile(F_head)
        G, D, F_head = wrap(G, world, device), wrap(D, world, device), wrap(F_head, world, device)
        rng = torch.Generator(device=device).manual_seed(config.seed + world.rank)
        objective = Objective.from_config(config, G, D, F_head, generator=rng)
        # CPUs, dataset nets (one 256 px image per pass): separate passes measured faster (ab.py separate:
        # cut 1.06x, fastcut 1.05x); the single-image nets keep one batch (sincut 1.03x, within the A/A
        # spread of 5%; quick 0.85x: its small convs pay per call). DDP needs one forward per net and step.
        objective.separate_passes = device.type == "cpu" and config.generator == "resnet" and not world.active
        betas = (config.beta1, config.beta2)
        opt_G = torch.optim.Adam([*G.parameters(), *F_head.parameters()], lr=config.lr, betas=betas)
        opt_D = torch.optim.Adam(D.parameters(), lr=config.lr, betas=betas)
        trainer = cls(config, data, G, D, F_head, objective, opt_G, opt_D, rng, world)
        if config.precision == "fp16":  # loss scaling keeps small fp16 gradients from flushing to zero
            trainer.scalers = {"G": torch.amp.GradScaler("cuda"), "D": torch.amp.GradScaler("cuda")}
        if config.ema_halflife > 0:
            trainer.G_average = copy.deepcopy(unwrap(G)).eval().requires_grad_(False)
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

    def lr_at(self, step: int) -> float:
        """The schedule's lr, held at or below `lr_ceiling` (a resumed run's lr never jumps back up)."""
        c = self.config
        if c.steps == UNSIZED_STEPS:  # --minutes, before the run is sized: the constant first phase
            return c.lr * min(1.0, self.lr_ceiling)
        factor = lr_factor(step, c.steps, c.decay_start, c.lr_schedule, c.epoch_steps)
        return c.lr * min(factor, self.lr_ceiling)

    def set_lr(self, step: int) -> None:
        lr = self.lr_at(step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def sample(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        src, tgt = self.data.sample(step, self.rng)
        layout = memory_format(unwrap(self.G), src.device)  # G's layout: a conv's output follows its input
        return src.contiguous(memory_format=layout), tgt.contiguous(memory_format=layout)

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
        g_parts = self.generator_step(fwd)
        if self.G_average is not None:
            update_average(self.G_average, unwrap(self.G), ema_beta(step + 1, self.config.ema_halflife))
        return {**d_parts, **g_parts}

    def state(self) -> dict:
        """Everything needed to continue bit for bit: weights, optimiser moments, every RNG state; with
        --ema-halflife also G's average ("G_average", what translate loads)."""
        state = {
            "config": asdict(self.config), "G": unwrap(self.G).state_dict(), "D": unwrap(self.D).state_dict(),
            "F": unwrap(self.F).state_dict(), "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "lr": self.opt_G.param_groups[0]["lr"], "lr_ceiling": self.lr_ceiling, "rng": capture_rng(self.rng),
        }
        if self.G_average is not None:
            state["G_average"] = self.G_average.state_dict()
        return state

    def load_state(self, state: dict) -> None:
        unwrap(self.G).load_state_dict(state["G"])
        unwrap(self.D).load_state_dict(state["D"])
        unwrap(self.F).load_state_dict(state["F"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        restore_rng(state["rng"], self.rng)
        self.lr_ceiling = float(state.get("lr_ceiling", 1.0))
        if self.G_average is not None:
            self.G_average.load_state_dict(state["G_average"])

    @contextlib.contextmanager
    def translating(self):
        """The generator that translates (G's average when the run keeps one), in eval mode meanwhile."""
        if self.G_average is not None:
            yield self.G_average
            return
        G = unwrap(self.G)
        G.eval()
        try:
            yield G
        finally:
            G.train()

    def translate(self, image: torch.Tensor) -> torch.Tensor:
        with self.translating() as G:
            return translate_tensor(G, image, seed=self.config.seed, border=self.config.border)

    def translate_full(self, rgb: np.ndarray) -> np.ndarray:
        """An HxWx3 uint8 image of any size, in tiles of bounded memory: what `sincut translate` gives."""
        with self.translating() as G:
            return Translator(G, next(G.parameters()).device, max_memory=RESULT_MEMORY, seed=self.config.seed,
                              border=self.config.border).translate(rgb)


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
    if config.precision == "bf16" and device.type == "cpu" and not cpu_has_bf16_kernels():
        raise UserError("--precision bf16: this CPU has no bfloat16 convolution kernels (needs AVX512-BF16 or "
                        "AMX), so it would train many times slower; use --precision fp32")


def make_data(config: TrainConfig, source: str | os.PathLike, target: str | os.PathLike, device: torch.device,
              world: World = World(), progress: TrainingProgress | None = None) -> SingleImagePair | FolderPairs:
    """Two image files: the single-image patch sampler. Two folders: the unpaired folder stream."""
    progress = progress or SilentProgress()
    if config.preset in DATASET_PRESETS or Path(source).is_dir():
        return FolderPairs(source, target, load_size=config.load_size, crop_size=config.crop_size,
                           batch_size=config.batch_size, flip=config.flip, seed=config.seed, device=device,
                           rank=world.rank, world_size=world.size, on_bad_file=progress.note)
    images = {source: load_image_compact(source), target: load_image_compact(target)}
    _warn_if_smaller_than_crop(progress, config, images)
    src, tgt = (im.to(device) for im in images.values())
    return SingleImagePair(src, tgt, crop_size=config.crop_size, zoom=(config.zoom_min, config.zoom_max),
                           flip=config.flip, batch_size=config.batch_size, positions=config.patch_positions)


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


def train(config: TrainConfig, source_path: str | os.PathLike, target_path: str | os.PathLike,
          out: str | os.PathLike, device: torch.device, progress: TrainingProgress | None = None) -> TrainResult:
    """Train a model that repaints SOURCE in TARGET's look (two images), or domain A in domain B's
    (two folders); write everything into `out`."""
    started = time.perf_counter()  # --minutes counts from here
    world, device = init_from_env(device)
    progress = progress if (progress and world.is_main) else SilentProgress()
    try:
        config.validate()
        check_device_support(config, device)
        check_selection_possible(config)
        with out_of_memory_is_one_line(source_path, config):
            data = make_data(config, source_path, target_path, device, world, progress)
            config = with_concrete_steps(config, data)
            run = prepare_run_dir(out) if world.is_main else Path(out)
            if world.is_main:
                inputs = {"source": str(Path(source_path).resolve()), "target": str(Path(target_path).resolve())}
                atomic_write(run / "run.json", lambda f: f.write(json.dumps(inputs, indent=2).encode()))
                atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
            trainer = Trainer.build(config, data, device, world)
            return _fit(trainer, run, 0, progress, started)
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
    overrides = dict(overrides or {})
    restart_lr = bool(overrides.pop("restart_lr", False))
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
            config = saved.with_resume_overrides(overrides)
        except ValueError as e:
            raise UserError(f"{run}: {e}") from None
        start = int(state["step"]) if state else 0
        if config.steps is not None and start >= config.steps:
            raise UserError(f"{run}: already trained {start} of {config.steps} steps; "
                            f"pass --steps N with N > {start} to train longer")
        check_device_support(config, device)
        check_selection_possible(config)
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
                _keep_lr_from_rising(trainer, state, start, restart_lr, progress)
            if world.is_main:
                _truncate_log(run / "log.jsonl", start)
                atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
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


def _fit(trainer: Trainer, run: Path, start: int, progress: TrainingProgress,
         started: float | None = None) -> TrainResult:
    """The loop: steps start..config.steps, logging, previews, checkpoints, graceful stop.

    With --minutes (config.steps None) the loop first evaluates the untrained model (timing an
    evaluation), runs calibration_steps() timed steps at the constant lr, then fixes the step count
    that fits the budget and records it in config.json, so a resume continues the same schedule.
    """
    config = trainer.config
    main = trainer.world.is_main
    t_start = time.perf_counter()
    started = t_start if started is None else started
    sizing = config.steps is None
    if sizing:
        if trainer.world.active:
            raise UserError("--minutes sizes a run from one process's timing; under torchrun give --steps")
        trainer.config = config = dataclasses.replace(config, steps=UNSIZED_STEPS)
    what = f"resuming at step {start}" if start else "training"
    processes = f" x {trainer.world.size} processes" if trainer.world.active else ""
    device = next(unwrap(trainer.G).parameters()).device
    length = f"{config.minutes:g} minutes" if sizing else f"{config.steps:,} steps"
    progress.note(f"sincut {what}: preset {config.preset}, {length}, batch {config.batch_size}{processes}"
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
        monitor = RunMonitor(run, config, source, target, progress, started,  # metrics.jsonl, best.pt
                             full_translation if full_rgb is not None else None)
        monitor.resume_from(start)

    def preview(step: int, translated: torch.Tensor) -> Path:
        write_preview(run / "previews" / f"step_{step:07d}.png", source, translated, target)
        return write_preview(run / "latest.png", source, translated, target)

    def size_run(done: int, timed_from: float) -> None:
        """--minutes: fix the total steps from the sustained step time so far; one preview and
        evaluation per minute of the budget."""
        nonlocal config, sizing
        per_step = (time.perf_counter() - timed_from) / max(1, done - start - 1)
        left = config.minutes * 60 - (time.perf_counter() - started)
        evaluations = max(1, round(config.minutes))
        total = steps_for_budget(done, left, per_step, seconds_per_eval, evaluations)
        every = max(1, (total - done) // evaluations)
        config = with_concrete_steps(dataclasses.replace(config, steps=total, preview_every=every, eval_every=0),
                                     trainer.data)
        trainer.config = monitor.config = config
        if isinstance(trainer.data, FolderPairs):
            trainer.data.fixed_size_from_epoch = fixed_size_from_epoch(config)
        atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
        progress.start(total, done)
        progress.note(f"{config.minutes:g} minutes at {per_step:.2f} s per step: {total:,} steps, "
                      f"a preview and evaluation every {every:,}")
        sizing = False

    losses: dict[str, float] = {}
    progress.start(None if sizing else config.steps, start)
    seconds_per_eval = 0.0
    if sizing:  # the starting point, and what one evaluation costs on this machine
        t0 = time.perf_counter()
        monitor.evaluate(0, trainer.translate(source), trainer.state, candidate=False)
        seconds_per_eval = time.perf_counter() - t0
    log_path = run / "log.jsonl" if main else Path(os.devnull)
    timed_from = time.perf_counter()
    with open(log_path, "a", encoding="utf-8") as log_file, StopRequest() as stop:
        try:
            step = start
            while step < config.steps:
                t0 = time.perf_counter()
                parts = trainer.step(step)
                done = step + 1
                if done == start + 1:
                    timed_from = time.perf_counter()  # the first step pays one-off costs
                checkpointing = done % config.checkpoint_every == 0 or stop.requested
                if sizing and (done == start + 1 + calibration_steps(config) or checkpointing):
                    size_run(done, timed_from)  # before any checkpoint, which must hold the real total
                    checkpointing = done % config.checkpoint_every == 0 or stop.requested
                logging = done % config.log_every == 0 or done == config.steps or step == start
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
                step = done
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


def import_official(folder: str | os.PathLike, out: str | os.PathLike, device: torch.device,
                    source: str | os.PathLike | None = None, target: str | os.PathLike | None = None,
                    preset: str | None = None, epoch: int | None = None) -> Path:
    """A run directory from a checkpoint of the paper's code (G, D and F), so `sincut resume` trains it on
    with our loop. Its recipe comes from `train_opt.txt` (else from the weights and `preset`); the step
    is `epoch` (default: the file's epoch number, 0 for `latest`) x steps per epoch. Adam's moments are
    not in the paper's checkpoints: the optimisers start fresh."""
    from .official import (dataroot_inputs, find_official, load_official_state, official_config, to_our_state,
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
    inputs = {"source": str(Path(source).resolve()), "target": str(Path(target).resolve()),
              "imported_from": str(ckpt.G.resolve())}
    atomic_write(run / "run.json", lambda f: f.write(json.dumps(inputs, indent=2).encode()))
    atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
    state = trainer.state()
    state["lr"] = trainer.lr_at(max(0, step - 1))
    save_checkpoint(run, step, state, keep=config.keep_checkpoints)
    return run
