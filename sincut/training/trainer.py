"""Trainer: builds G, D, F and their optimisers from a config, takes one step, and saves/loads its state.
Beside it what a step needs around it: the data (patch sampler or folders), the colour fit of --colour-init,
the device checks, and out-of-memory errors as one line.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..nets.colour import fit_colour_transfer
from ..config import DATASET_PRESETS, TrainConfig
from ..data.folders import FolderPairs
from ..data.images import fit_within, load_image_compact
from ..data.fixed_patches import FixedPatchPair
from ..data.patches import SingleImagePair
from ..errors import TrainingFailed, UserError
from ..interrupt import kill_point
from ..objective import Forward, Objective
from ..nets import ProjectionHead, build_discriminator, build_generator, memory_format
from ..progress import SilentProgress, TrainingProgress
from ..inference.translator import Translator, translate_tensor
from ..inference.device import cpu_has_bf16_kernels, resolve_precision
from ..nets.wrappers import unwrap
from .distributed import World, wrap
from .graphs import CapturedSteps, check_capturable, portable_optimizer_state
from .schedule import UNSIZED_STEPS, ema_beta, fixed_size_from_epoch, lr_factor, update_average


# Memory budget of the full-size translations (result.png, best.png) of a SOURCE larger than the
# evaluation size: the same rule as `sincut translate --max-memory` (inference/budget.py), with a smaller fixed
# budget than the translate command's default because training holds the patch sampler, the networks
# and their optimisers beside it. 0.6 GiB is the peak measured for the former fixed 640 px tile, which kept
# training on a 6000x4000 photo under 3 GiB; the default generator (1138 bytes per pixel measured) gets its largest
# tiles from it (742 px). `sincut translate --max-memory 600MiB` gives the same pixels.
RESULT_MEMORY = 600 * 2**20
# --coarse-fraction: the coarse stage zooms every patch out by this factor (each covers 4x the area)
COARSE_ZOOM = 0.5
# --colour-init fits its map on SOURCE and TARGET downscaled to at most this many pixels.
COLOUR_FIT_PIXELS = 1024 * 1024
_OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "not enough memory")


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
    """Put back what capture_rng took, so a resumed CPU run draws what the uninterrupted one would have."""
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    sampler_rng.set_state(state["sampler"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    # sync_free (CUDA): a step the host never waits on: fixed-shape patches (data/fixed_patches.py), the
    # flip-equivariance draw kept on the device; the loop reads the losses once per log interval.
    sync_free: bool = False
    fixed: FixedPatchPair | None = None  # the sync-free patch sampler (two images)
    graphs: CapturedSteps | None = None  # --cuda-graphs: each step replayed from a captured CUDA graph
    lr_value: float = 0.0  # the lr of the latest step (the optimisers may hold it in a device tensor)

    @classmethod
    def build(cls, config: TrainConfig, data: SingleImagePair | FolderPairs, device: torch.device,
              world: World = World(), sync_free: bool | None = None) -> "Trainer":
        """`sync_free`: the step that never waits for the device (default: on CUDA; forced on elsewhere, the CPU
        checks the same code); --cuda-graphs captures that step."""
        config = with_device_precision(config, device)
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
        trainer.lr_value = config.lr
        trainer.sync_free = objective.sync_free = (device.type == "cuda") if sync_free is None else sync_free
        if trainer.sync_free and isinstance(data, SingleImagePair):
            trainer.fixed = FixedPatchPair(data)
        if config.cuda_graphs:
            trainer.graphs = CapturedSteps(trainer)
        return trainer

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.config.precision == "fp32":
            return contextlib.nullcontext()
        dtype = torch.bfloat16 if self.config.precision == "bf16" else torch.float16
        # a captured graph must not keep autocast's cached weight casts from its capture: no cache then
        return torch.autocast(self.rng.device.type, dtype=dtype, cache_enabled=self.graphs is None)

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
        """The schedule's lr into the optimisers: a float, or written into the device tensor a captured
        optimiser reads (fill_: the host sends the value, it never waits)."""
        self.lr_value = lr = self.lr_at(step)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                if isinstance(group["lr"], torch.Tensor):
                    group["lr"].fill_(lr)
                else:
                    group["lr"] = lr

    def in_coarse_stage(self, step: int) -> bool:
        """--coarse-fraction: whether `step` belongs to the coarse stage (the first fraction of the steps)."""
        c = self.config
        return c.coarse_fraction > 0 and c.steps is not None and step < c.coarse_fraction * c.steps

    def sample(self, step: int, out: tuple[torch.Tensor, torch.Tensor] | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The step's patches in G's memory layout; sync-free: fixed shapes, written into `out` when given."""
        if self.fixed is not None:
            src, tgt = self.fixed.sample(step, self.rng, self.in_coarse_stage(step), out=out)
        elif self.in_coarse_stage(step):
            src, tgt = self.data.sample(step, self.rng, coarse=True)
        else:
            src, tgt = self.data.sample(step, self.rng)
        layout = memory_format(unwrap(self.G), src.device)  # G's layout: a conv's output follows its input
        return src.contiguous(memory_format=layout), tgt.contiguous(memory_format=layout)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, step: int = 0) -> Forward:
        with self.autocast():
            return self.objective.forward(src, tgt, step=step)

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
        if self.graphs is not None:
            return self.graphs.step(step)
        self.set_lr(step)
        src, tgt = self.sample(step)
        fwd = self.forward(src, tgt, step)
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
            "F": unwrap(self.F).state_dict(), "opt_G": portable_optimizer_state(self.opt_G, self.lr_value),
            "opt_D": portable_optimizer_state(self.opt_D, self.lr_value),
            "lr": self.lr_value, "lr_ceiling": self.lr_ceiling, "rng": capture_rng(self.rng),
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
        self.lr_value = float(state.get("lr", self.config.lr))
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


def with_device_precision(config: TrainConfig, device: torch.device) -> TrainConfig:
    """The config with --precision auto made concrete for this device and recipe (resolve_precision), so
    config.json, checkpoints, the report and the autocast all name the precision that ran."""
    precision = resolve_precision(config.precision, device, config.preset)
    return config if precision == config.precision else dataclasses.replace(config, precision=precision)


def check_device_support(config: TrainConfig, device: torch.device, world: World = World()) -> None:
    """Refuse, as one line, what this device (or these processes) cannot run."""
    check_capturable(config, device, world)
    if config.precision == "fp16" and device.type != "cuda":
        raise UserError(f"--precision fp16 needs a CUDA GPU (this run is on {device.type}); use --precision bf16")
    if config.precision == "bf16" and device.type == "cpu" and not cpu_has_bf16_kernels():
        raise UserError("--precision bf16: this CPU has no bfloat16 convolution kernels (needs AVX512-BF16 or "
                        "AMX), so it would train many times slower; use --precision auto or fp32")


def make_data(config: TrainConfig, source: str | os.PathLike, target: str | os.PathLike, device: torch.device,
              world: World = World(), progress: TrainingProgress | None = None) -> SingleImagePair | FolderPairs:
    """Two image files: the single-image patch sampler. Two folders: the unpaired folder stream."""
    progress = progress or SilentProgress()
    if config.preset in DATASET_PRESETS or Path(source).is_dir():
        for option, on in (("coarse-fraction", config.coarse_fraction > 0), ("match-scale", config.match_scale)):
            if on:
                raise UserError(f"--{option} changes how patches of two images are sampled; folders train on "
                                f"whole crops: leave --{option} out")
        return FolderPairs(source, target, load_size=config.load_size, crop_size=config.crop_size,
                           batch_size=config.batch_size, flip=config.flip, seed=config.seed, device=device,
                           rank=world.rank, world_size=world.size, on_bad_file=progress.note)
    images = {source: load_image_compact(source), target: load_image_compact(target)}
    _warn_if_smaller_than_crop(progress, config, images)
    src, tgt = (im.to(device) for im in images.values())
    coarse_zoom = COARSE_ZOOM if config.coarse_fraction > 0 else 1.0
    return SingleImagePair(src, tgt, crop_size=config.crop_size, zoom=(config.zoom_min, config.zoom_max),
                           coarse_zoom=coarse_zoom, match_scale=config.match_scale,
                           flip=config.flip, batch_size=config.batch_size, positions=config.patch_positions)


def _warn_if_smaller_than_crop(progress: TrainingProgress, config: TrainConfig, images: dict) -> None:
    for path, image in images.items():
        h, w = image.shape[2:]
        if min(h, w) < config.crop_size:
            progress.note(f"warning: {path} is {w}x{h}, smaller than the {config.crop_size} px patches; "
                          "it is upscaled to fit (pass a smaller --crop-size to avoid that)")
