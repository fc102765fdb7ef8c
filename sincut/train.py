"""The training loop, readable top to bottom: sample patches, D step, G + F step, log, save.

source/target image -> PatchSampler (Kornia, on the device) -> G, D, F -> Objective -> Adam.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .checkpoint import save_checkpoint
from .config import TrainConfig
from .data.images import atomic_write, load_image, save_image, side_by_side
from .data.patches import PatchSampler
from .errors import UserError
from .losses import Forward, Objective
from .monitor import RunMonitor
from .nets import Discriminator, Generator, ProjectionHead
from .progress import SilentProgress, TrainingProgress
from .report import save_inputs, write_report
from .translate import translate_tensor

PREVIEW_HEIGHT = 384


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


def prepare_run_dir(out: str | os.PathLike) -> Path:
    """Create the run directory; refuse one that already holds a run, so nothing is overwritten."""
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise UserError(f"{run}: exists and is a file; pass a folder for --out")
    if (run / "checkpoints").exists() or (run / "config.json").exists():
        raise UserError(f"{run}: already holds a training run; pass a new --out folder (or delete this one)")
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UserError(f"{run}: cannot write there ({e.strerror}); pass a writable --out folder") from None
    return run


def write_preview(path: Path, source: torch.Tensor, translated: torch.Tensor, target: torch.Tensor) -> Path:
    sheet = side_by_side([source[0], translated[0], target[0]], PREVIEW_HEIGHT)
    return save_image(sheet, path)


@dataclass
class Trainer:
    """Everything one training run holds: the data samplers, the three networks, the objective, the
    optimisers and the random generator that drives sampling, noise and NCE locations."""

    config: TrainConfig
    source: torch.Tensor
    target: torch.Tensor
    source_patches: PatchSampler
    target_patches: PatchSampler
    G: Generator
    D: Discriminator
    F: ProjectionHead
    objective: Objective
    opt_G: torch.optim.Optimizer
    opt_D: torch.optim.Optimizer
    rng: torch.Generator

    @classmethod
    def build(cls, config: TrainConfig, source: torch.Tensor, target: torch.Tensor, device: torch.device) -> "Trainer":
        # Data: both images live on the device; patches are cut there every step.
        source, target = source.to(device), target.to(device)
        zoom = (config.zoom_min, config.zoom_max)
        source_patches = PatchSampler(source, config.crop_size, zoom, config.flip)
        target_patches = PatchSampler(target, config.crop_size, zoom, config.flip)
        # Networks, built on the CPU from the seed so every device starts from the same weights.
        torch.manual_seed(config.seed)
        G = Generator(ngf=config.ngf, crop_size=config.crop_size)
        D = Discriminator(ndf=config.ndf, crop_size=config.crop_size)
        F_head = ProjectionHead(G.feature_channels(config.nce_layers), nc=config.projection_dim)
        # channels_last: oneDNN and cuDNN run these convolutions markedly faster in NHWC.
        G = G.to(device, memory_format=torch.channels_last)
        D = D.to(device, memory_format=torch.channels_last)
        F_head = F_head.to(device)
        rng = torch.Generator(device=device).manual_seed(config.seed)
        objective = Objective(
            G, D, F_head, nce_layers=config.nce_layers, num_patches=config.num_patches,
            nce_temperature=config.nce_temperature, nce_negatives_from_minibatch=config.nce_negatives_from_minibatch,
            lambda_gan=config.lambda_gan, lambda_nce=config.lambda_nce, nce_identity=config.nce_identity,
            lambda_identity=config.lambda_identity, r1_gamma=config.r1_gamma, generator=rng,
        )
        betas = (config.beta1, config.beta2)
        opt_G = torch.optim.Adam([*G.parameters(), *F_head.parameters()], lr=config.lr, betas=betas)
        opt_D = torch.optim.Adam(D.parameters(), lr=config.lr, betas=betas)
        return cls(config, source, target, source_patches, target_patches, G, D, F_head, objective, opt_G, opt_D, rng)

    def set_lr(self, step: int) -> None:
        lr = self.config.lr * lr_factor(step, self.config.steps, self.config.decay_start)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr

    def sample(self) -> tuple[torch.Tensor, torch.Tensor]:
        n, nhwc = self.config.batch_size, torch.channels_last
        src = self.source_patches.sample(n, self.rng).contiguous(memory_format=nhwc)
        return src, self.target_patches.sample(n, self.rng).contiguous(memory_format=nhwc)

    def discriminator_step(self, fwd: Forward) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(True)
        self.opt_D.zero_grad(set_to_none=True)
        loss, parts = self.objective.discriminator_loss(fwd)
        loss.backward()
        self.opt_D.step()
        return parts

    def generator_step(self, fwd: Forward) -> dict[str, torch.Tensor]:
        self.D.requires_grad_(False)  # D's weights get no gradient from the G loss
        self.opt_G.zero_grad(set_to_none=True)
        loss, parts = self.objective.generator_loss(fwd)
        loss.backward()
        self.opt_G.step()
        return parts

    def step(self, step: int) -> dict[str, torch.Tensor]:
        """One training step as in the paper: G forward once, update D, then update G and F."""
        self.set_lr(step)
        src, tgt = self.sample()
        fwd = self.objective.forward(src, tgt)
        return {**self.discriminator_step(fwd), **self.generator_step(fwd)}

    def state(self) -> dict:
        return {
            "config": asdict(self.config), "G": self.G.state_dict(), "D": self.D.state_dict(),
            "F": self.F.state_dict(), "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "rng": {"torch": torch.get_rng_state(), "device": self.rng.get_state()},
        }

    def translate_source(self) -> torch.Tensor:
        self.G.eval()
        out = translate_tensor(self.G, self.source, seed=self.config.seed)
        self.G.train()
        return out


def train(config: TrainConfig, source_path: str | os.PathLike, target_path: str | os.PathLike,
          out: str | os.PathLike, device: torch.device, progress: TrainingProgress | None = None) -> TrainResult:
    """Train a SinCUT model that repaints SOURCE in TARGET's look; write everything into `out`."""
    progress = progress or SilentProgress()
    config.validate()
    source = load_image(source_path)
    target = load_image(target_path)
    run = prepare_run_dir(out)
    atomic_write(run / "config.json", lambda f: f.write(config.to_json().encode()))
    t_start = time.perf_counter()
    trainer = Trainer.build(config, source, target, device)
    save_inputs(run, source, target)  # the report shows them; the run folder stands on its own
    monitor = RunMonitor(run, config, source, target, progress, t_start)  # metrics.jsonl, best.pt

    def preview(step: int, translated: torch.Tensor) -> Path:
        write_preview(run / "previews" / f"step_{step:07d}.png", trainer.source, translated, trainer.target)
        return write_preview(run / "latest.png", trainer.source, translated, trainer.target)

    losses: dict[str, float] = {}
    progress.start(config.steps, 0)
    with open(run / "log.jsonl", "a", encoding="utf-8") as log_file:
        try:
            for step in range(config.steps):
                t0 = time.perf_counter()
                parts = trainer.step(step)
                done = step + 1
                logging = done % config.log_every == 0 or done == config.steps or step == 0
                if logging:  # the only host-device sync of a step, and only every log_every steps
                    losses = {k: float(v.detach()) for k, v in parts.items()}
                    bad = [k for k, v in losses.items() if not math.isfinite(v)]
                    if bad:
                        raise UserError(f"training diverged: loss {bad[0]} is {losses[bad[0]]} at step {done}; "
                                        "the last checkpoint is kept, try a lower --lr")
                    record = {"step": done, "lr": trainer.opt_G.param_groups[0]["lr"],
                              "seconds_per_step": round(time.perf_counter() - t0, 4), **losses}
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                progress.step(step, losses if logging else None)
                if done % config.checkpoint_every == 0 and done < config.steps:
                    save_checkpoint(run, done, trainer.state(), keep=config.keep_checkpoints)
                previewing = done % config.preview_every == 0
                if (previewing or monitor.due(done)) and done < config.steps:
                    translated = trainer.translate_source()  # one translation serves preview and metrics
                    if previewing:
                        preview(done, translated)
                    if monitor.due(done):
                        monitor.evaluate(done, translated, trainer.state)
        finally:
            progress.finish()

    ckpt = save_checkpoint(run, config.steps, trainer.state(), keep=config.keep_checkpoints)
    translated = trainer.translate_source()
    preview_path = preview(config.steps, translated)
    monitor.evaluate(config.steps, translated, trainer.state)
    result = save_image(translated, run / "result.png")
    write_report(run)
    return TrainResult(run, ckpt, result, preview_path, config.steps, time.perf_counter() - t_start, losses)
