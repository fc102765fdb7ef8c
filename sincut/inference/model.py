"""A trained generator from a checkpoint, a run directory (best.pt or the latest) or the paper's checkpoints."""

from __future__ import annotations

import os

import torch

from ..config import TrainConfig
from ..errors import UserError
from ..nets import Generator, build_generator
from ..run_folder import load_checkpoint, resolve_checkpoint
from ..official import is_official, load_official_generator


def load_generator(model: str | os.PathLike, device: torch.device,
                   checkpoint: str = "auto") -> tuple[Generator, TrainConfig, int]:
    """The generator of a checkpoint file, or of a run directory's best.pt (when it has one and
    `checkpoint` is auto or best) or latest checkpoint; in eval mode. A checkpoint of the paper's code
    (its `checkpoints/NAME` folder or a `*_net_G.pth`) loads too, its step being 0."""
    if is_official(model):
        G, config, _ = load_official_generator(model)
        G = G.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
        return G, config, 0
    path = resolve_checkpoint(model, checkpoint)
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    G = build_generator(config)
    try:
        G.load_state_dict(state.get("G_average", state["G"]))  # a run with --ema-halflife: its average
    except RuntimeError as e:
        raise UserError(f"{path}: its generator weights do not match its {config.preset} config "
                        f"({str(e).splitlines()[0][:160]})") from None
    G = G.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
    return G, config, int(state["step"])
