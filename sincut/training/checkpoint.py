"""Checkpoints: written atomically, read back without unpickling arbitrary objects.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts saved with `torch.save`
and loaded with `torch.load(weights_only=True)`, so a crafted file cannot run code on load.
Files are named `checkpoints/step_0001000.pt` inside a run directory; the newest is the latest.
`checkpoints/best.pt` (when training found one) holds the step with the best quality figures.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .. import __version__
from ..data.images import atomic_write
from ..errors import TrainingFailed, UserError

FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
BEST_FILE = "best.pt"  # never matches _STEP_FILE, so it is neither pruned nor taken for the latest


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint files of a run, oldest first (temp files never match the pattern)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write `step_<step>.pt` atomically, then delete all but the newest `keep` checkpoints."""
    payload = {"format": FORMAT_VERSION, "sincut_version": __version__, "step": step, **state}
    path = checkpoint_dir(run_dir) / f"step_{step:07d}.pt"
    try:
        atomic_write(path, lambda f: torch.save(payload, f))
    except OSError as e:
        previous = list_checkpoints(run_dir)
        kept = f"the previous checkpoint {previous[-1]} is intact" if previous else "no earlier checkpoint exists"
        raise TrainingFailed(f"could not write checkpoint {path} ({e.strerror or e}); {kept}; "
                             f"free space or fix permissions, then run `sincut resume {run_dir}`") from None
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def remove_partial_files(run_dir: str | os.PathLike) -> int:
    """Delete temp files a killed process left behind (they never carry a final name)."""
    removed = 0
    for tmp in Path(run_dir).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def save_best_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any], quality: dict) -> Path:
    """Write (atomically, replacing the previous one) `best.pt` with the figures that made it best."""
    payload = {"format": FORMAT_VERSION, "sincut_version": __version__, "step": step, **state, "quality": quality}
    return atomic_write(checkpoint_dir(run_dir) / BEST_FILE, lambda f: torch.save(payload, f))


def resolve_checkpoint(model: str | os.PathLike, which: str = "auto") -> Path:
    """A checkpoint file, or a run directory's `best.pt` (auto, when it exists; best) or latest one."""
    p = Path(model)
    if not p.exists():
        raise UserError(f"{p}: no such run directory or checkpoint; pass the --out folder of `sincut train`")
    if p.is_file():
        return p
    best = checkpoint_dir(p) / BEST_FILE
    if which in ("auto", "best") and best.is_file():
        return best
    if which == "best":
        raise UserError(f"{p}: this run has no {best} (no evaluation qualified); use --checkpoint latest")
    found = list_checkpoints(p)
    if not found:
        raise UserError(f"{p}: this folder holds no checkpoints (expected {checkpoint_dir(p)}/step_*.pt); "
                        "train a model first with `sincut train`")
    return found[-1]


def load_weights_file(path: Path, empty: str, holder: str, unreadable: str,
                      map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True (no code runs from the file); an empty, refused or unreadable file
    is a one-line UserError naming it: `empty` and `unreadable` finish its sentence, `holder` names what
    never holds pickled objects. The one safe load for sincut's checkpoints and the paper's weights."""
    if path.stat().st_size == 0:
        raise UserError(f"{path}: {empty}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise UserError(f"{path}: refused to load: the file holds objects {holder} never has "
                        f"({first[:160]})") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise UserError(f"{path}: {unreadable.format(str(e).splitlines()[0][:160])}") from None


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with weights_only=True; any failure becomes a one-line UserError naming the file."""
    p = Path(path)
    state = load_weights_file(p, "the checkpoint is empty (an interrupted copy?); use another checkpoint",
                              "a sincut checkpoint", "not a readable sincut checkpoint (truncated or corrupt: {})",
                              map_location)
    if not isinstance(state, dict) or "format" not in state or "G" not in state:
        raise UserError(f"{p}: not a sincut checkpoint (no format tag or generator weights)")
    if state["format"] > FORMAT_VERSION:
        raise UserError(f"{p}: checkpoint format {state['format']} is newer than this sincut supports "
                        f"({FORMAT_VERSION}); upgrade sincut")
    return state
