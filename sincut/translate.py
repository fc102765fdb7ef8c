"""Inference: translate whole images at full resolution with a trained generator."""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from .checkpoint import load_checkpoint, resolve_checkpoint
from .config import TrainConfig
from .data.images import IMAGE_SUFFIXES, load_image, save_image
from .errors import UserError
from .nets import Generator, build_generator


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    return torch.device(name)


def load_generator(model: str | os.PathLike, device: torch.device,
                   checkpoint: str = "auto") -> tuple[Generator, TrainConfig, int]:
    """The generator of a checkpoint file, or of a run directory's best.pt (when it has one and
    `checkpoint` is auto or best) or latest checkpoint; in eval mode."""
    path = resolve_checkpoint(model, checkpoint)
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    G = build_generator(config)
    try:
        G.load_state_dict(state["G"])
    except RuntimeError as e:
        raise UserError(f"{path}: its generator weights do not match its {config.preset} config "
                        f"({str(e).splitlines()[0][:160]})") from None
    G = G.to(device, memory_format=torch.channels_last).eval().requires_grad_(False)
    return G, config, int(state["step"])


@torch.inference_mode()
def translate_tensor(G: Generator, image: Tensor, seed: int = 0) -> Tensor:
    """[1, 3, H, W] in [-1, 1] -> same size, unclamped. Reflect-pads to G's stride and crops back.

    The per-pixel noise of G's upsampling layer is drawn from `seed`, so a translation repeats exactly.
    """
    h, w = image.shape[2:]
    s = G.stride
    pad_h, pad_w = (-h) % s, (-w) % s
    x = F.pad(image, (0, pad_w, 0, pad_h), mode="replicate" if min(h, w) <= max(pad_h, pad_w) else "reflect")
    gen = torch.Generator(device=image.device).manual_seed(seed)
    # channels_last is markedly faster for these convolutions on CPUs (oneDNN) and with cuDNN.
    out, _ = G(x.contiguous(memory_format=torch.channels_last), generator=gen)
    return out[:, :, :h, :w]


def expand_inputs(inputs: list[str | os.PathLike]) -> list[tuple[Path, Path]]:
    """(file, path relative to the output folder) for each image; folders are walked recursively."""
    pairs: list[tuple[Path, Path]] = []
    for item in inputs:
        p = Path(item)
        if not p.exists():
            raise UserError(f"{p}: no such file or folder; check the path")
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                raise UserError(f"{p}: the folder holds no images ({', '.join(IMAGE_SUFFIXES)})")
            pairs += [(f, f.relative_to(p)) for f in files]
        else:
            pairs.append((p, Path(p.name)))
    return pairs


def translate_files(model: str | os.PathLike, inputs: list[str | os.PathLike], out_dir: str | os.PathLike,
                    device: torch.device, seed: int = 0, suffix: str = "", on_image=None,
                    checkpoint: str = "auto") -> list[Path]:
    """Translate every input image into `out_dir` (PNG, same name, same size); returns the outputs."""
    G, _, _ = load_generator(model, device, checkpoint)
    outputs = []
    for src, rel in expand_inputs(inputs):
        image = load_image(src).to(device)
        result = translate_tensor(G, image, seed)
        dst = Path(out_dir) / rel.with_name(rel.stem + suffix + ".png")
        outputs.append(save_image(result, dst))
        if on_image is not None:
            on_image(src, dst)
    return outputs
