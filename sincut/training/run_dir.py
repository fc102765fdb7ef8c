"""A run directory's files besides checkpoints: the folder itself, JSON, previews, the training pair, the
JSON-lines logs and their truncation on resume, and the RNG states a checkpoint carries so a resumed CPU run repeats exactly.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ..data.images import atomic_write, save_image, side_by_side
from ..errors import UserError


PREVIEW_HEIGHT = 384
SOURCE_IMAGE, TARGET_IMAGE = "source.png", "target.png"  # the training pair as the report shows it


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


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e}); is this a sincut run directory?") from None


def write_preview(path: Path, source: torch.Tensor, translated: torch.Tensor, target: torch.Tensor) -> Path:
    sheet = side_by_side([source[0], translated[0], target[0]], PREVIEW_HEIGHT)
    return save_image(sheet, path)


def truncate_log(path: Path, last_step: int) -> None:
    if not path.exists():
        return
    kept = [line for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= last_step]
    atomic_write(path, lambda f: f.write("".join(line + "\n" for line in kept).encode()))


def save_inputs(run: Path, source: Tensor, target: Tensor) -> None:
    """Keep the training pair inside the run folder, so its report and `sincut eval` need nothing else."""
    save_image(source, run / SOURCE_IMAGE)
    save_image(target, run / TARGET_IMAGE)


def read_jsonl(path: Path) -> list[dict]:
    """Complete JSON lines of a log; a torn last line (the run is still writing) is skipped."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
