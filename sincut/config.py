"""One dataclass for a training run; its defaults are the paper's single-image (SinCUT) recipe.

Every field becomes a `sincut train` option (see cli.py), so the paper's numbers live here and only
here. The config is saved as JSON into every run directory and inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any


def _opt(default: Any, help: str, **limits: Any) -> Any:
    return field(default=default, metadata={"help": help, **limits})


@dataclass
class TrainConfig:
    preset: str = _opt("sincut", "Recipe the other defaults come from.")
    steps: int = _opt(100_000, "Total training steps (the paper: 100,000).", min=1)
    decay_start: float = _opt(0.5, "Fraction of the steps at constant lr; then linear decay to zero.", min=0.0, max=1.0)
    batch_size: int = _opt(16, "Patches per step from each image.", min=1)
    crop_size: int = _opt(64, "Patch size in pixels (a power of two; D's depth follows it).", min=8)
    zoom_min: float = _opt(1 / 3, "Smallest random zoom of a patch, relative to the native size.", min=0.01, max=1.0)
    zoom_max: float = _opt(1.0, "Largest random zoom of a patch.", min=0.01, max=4.0)
    flip: bool = _opt(True, "Random horizontal flips, drawn separately for source and target.")
    ngf: int = _opt(10, "Generator width (channel table scale).", min=1)
    ndf: int = _opt(8, "Discriminator width (channel table scale).", min=1)
    lr: float = _opt(0.002, "Adam learning rate for G, D and F.", min=0.0)
    beta1: float = _opt(0.0, "Adam beta1.", min=0.0, max=1.0)
    beta2: float = _opt(0.99, "Adam beta2.", min=0.0, max=1.0)
    lambda_gan: float = _opt(1.0, "Weight of the adversarial loss.", min=0.0)
    lambda_nce: float = _opt(4.0, "Weight of each PatchNCE term.", min=0.0)
    nce_identity: bool = _opt(True, "Add the identity PatchNCE term on (target, G(target)).")
    lambda_identity: float = _opt(1.0, "Weight of the L1 identity loss between G(target) and target.", min=0.0)
    nce_layers: tuple[int, ...] = _opt((0, 2, 4), "Encoder layers used by PatchNCE (0 = the input image).")
    num_patches: int = _opt(1, "Sampled feature locations per layer per image.", min=1)
    nce_temperature: float = _opt(0.07, "PatchNCE temperature.", min=1e-4)
    nce_negatives_from_minibatch: bool = _opt(True, "Take PatchNCE negatives from the whole minibatch, "
                                                     "not only the same image.")
    projection_dim: int = _opt(256, "Width of the PatchNCE projection head F.", min=1)
    r1_gamma: float = _opt(1.0, "R1 penalty weight gamma (0 turns it off).", min=0.0)
    seed: int = _opt(0, "Random seed; a CPU run with the same seed repeats exactly.", min=0)
    log_every: int = _opt(10, "Steps between loss log lines (and progress updates of the losses).", min=1)
    preview_every: int = _opt(1000, "Steps between preview images (source | translation | target).", min=1)
    checkpoint_every: int = _opt(1000, "Steps between checkpoints (one is also written at the end).", min=1)
    keep_checkpoints: int = _opt(2, "How many recent checkpoints to keep.", min=1)
    # Quality measurement and the best checkpoint (sincut/metrics.py, sincut/monitor.py).
    eval_every: int = _opt(0, "Steps between quality measurements of the full-resolution translation "
                              "(metrics.jsonl, best.pt); 0 = at every preview.", min=0)
    select_by: str = _opt("style", "What picks checkpoints/best.pt: style (lowest style distance among "
                                   "evaluations with SSIM >= --select-min-ssim), ssim or edges (highest).",
                          choices=("style", "ssim", "edges"))
    select_min_ssim: float = _opt(0.5, "Content SSIM an evaluation needs to be chosen by --select-by style.",
                                  min=0.0, max=1.0)

    def validate(self) -> None:
        """Raise ValueError naming the option when a value is out of range or inconsistent."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None and value < lo:
                raise ValueError(f"--{f.name.replace('_', '-')} must be >= {lo}, got {value}")
            if hi is not None and value > hi:
                raise ValueError(f"--{f.name.replace('_', '-')} must be <= {hi}, got {value}")
            choices = f.metadata.get("choices")
            if choices is not None and value not in choices:
                raise ValueError(f"--{f.name.replace('_', '-')} must be one of {', '.join(choices)}, got {value!r}")
        if self.crop_size & (self.crop_size - 1):
            raise ValueError(f"--crop-size must be a power of two, got {self.crop_size}")
        if self.zoom_min > self.zoom_max:
            raise ValueError(f"--zoom-min ({self.zoom_min}) must not exceed --zoom-max ({self.zoom_max})")
        if not self.nce_layers or min(self.nce_layers) < 0 or max(self.nce_layers) > 5:
            raise ValueError(f"--nce-layers must be indices in 0..5, got {self.nce_layers}")
        if self.preset not in PRESETS:
            raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        cfg = cls(**{k: v for k, v in values.items() if k in known})
        cfg.nce_layers = tuple(cfg.nce_layers)
        return cfg


# Presets override the dataclass defaults (which already are the `sincut` recipe).
PRESETS: dict[str, dict[str, Any]] = {
    "sincut": {},
}


def make_config(preset: str = "sincut", **overrides: Any) -> TrainConfig:
    """The preset's values with the given overrides; validated."""
    if preset not in PRESETS:
        raise ValueError(f"--preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    cfg = TrainConfig(**{**PRESETS[preset], **overrides, "preset": preset})
    cfg.nce_layers = tuple(cfg.nce_layers)
    cfg.validate()
    return cfg
