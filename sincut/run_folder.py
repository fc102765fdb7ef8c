"""The run folder's format: what `sincut train` writes into --out, and how everything else reads it back.

    config.json            the TrainConfig in force (rewritten when --minutes sizes the run or resume changes it)
    run.json               where SOURCE and TARGET are (and the paper's checkpoint an imported run came from)
    log.jsonl              one JSON line per logged step: step, lr, seconds per step, the losses
    metrics.jsonl          one JSON line per evaluation: the quality figures, whether it became the best
    source.png target.png  the training pair as evaluated, so the report and `sincut eval` need nothing else
    latest.png previews/step_0001000.png   source | translation | target sheets
    result.png best.png    the final translation and the best evaluation's, full size
    checkpoints/step_0001000.pt checkpoints/best.pt    see below
    report.html report.png written from these files (evaluation/report.py)

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts saved with `torch.save` and
loaded with `torch.load(weights_only=True)`, so a crafted file cannot run code on load. The newest
`step_*.pt` is the latest; `best.pt` (when an evaluation qualified) holds the step with the best figures.
Resume goes on from the newest one that loads, setting a damaged newer one aside as `step_*.pt.damaged`.

Training writes the folder, evaluation adds to it and reads it, inference loads its checkpoints, batch and
the CLI look into it: the format lives here, below all of them (it needs only data/images.py's atomic
writes and image saving), so none of them imports another to read a run.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import re
import zipfile
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

from . import __version__
from .config import TrainConfig
from .data.images import atomic_write, save_image, side_by_side, write_fault
from .errors import TrainingFailed, UserError, WriteFailed
from .interrupt import kill_point

CONFIG_FILE, RUN_FILE = "config.json", "run.json"
LOG_FILE, METRICS_FILE = "log.jsonl", "metrics.jsonl"
SOURCE_IMAGE, TARGET_IMAGE = "source.png", "target.png"  # the training pair as the report shows it
RESULT_IMAGE, BEST_IMAGE, LATEST_IMAGE = "result.png", "best.png", "latest.png"
PREVIEWS, CHECKPOINTS = "previews", "checkpoints"
REPORT_HTML, REPORT_PNG = "report.html", "report.png"
BEST_FILE = "best.pt"  # never matches _STEP_FILE, so it is neither pruned nor taken for the latest
PREVIEW_HEIGHT = 384
FORMAT_VERSION = 1
_STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
_STEP_PREVIEW = re.compile(r"^step_(\d+)\.png$")


# ---------------------------------------------------------------------------------------------
# The folder and its JSON files
# ---------------------------------------------------------------------------------------------

def is_run_dir(run: str | os.PathLike) -> bool:
    """A folder `sincut train` got far enough in to resume: it wrote config.json and run.json."""
    return (Path(run) / CONFIG_FILE).is_file() and (Path(run) / RUN_FILE).is_file()


def prepare_run_dir(out: str | os.PathLike) -> Path:
    """Create the run directory; refuse one that already holds a run, so nothing is overwritten."""
    run = Path(out)
    if run.exists() and not run.is_dir():
        raise UserError(f"{run}: exists and is a file; pass a folder for --out")
    if (run / CHECKPOINTS).exists() or (run / CONFIG_FILE).exists():
        raise UserError(f"{run}: already holds a training run; continue it with `sincut resume {run}`, "
                        "or pass a new --out folder")
    for tmp in [t for name in (RUN_FILE, CONFIG_FILE) for t in run.glob(f".{name}.*.tmp")]:
        tmp.unlink(missing_ok=True)  # a train killed as it wrote them left these
    try:
        run.mkdir(parents=True, exist_ok=True)
        probe = run / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:  # a full disk is the machine's fault (exit 1); a folder it may not write, a bad --out
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise write_fault(e, run / ".write-test") from None
        raise UserError(f"{run}: cannot write there ({e.strerror}); pass a writable --out folder") from None
    return run


def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: unreadable ({e}); is this a sincut run directory?") from None


def write_config(run: Path, config: TrainConfig) -> Path:
    """config.json, atomically: a run killed while it is rewritten keeps the previous one."""
    return atomic_write(run / CONFIG_FILE, config.to_json().encode())


def write_run_info(run: Path, source: str | os.PathLike, target: str | os.PathLike, **extra: str) -> Path:
    """run.json: the inputs as absolute paths (resume reads them again), and `extra` facts about the run."""
    info = {"source": str(Path(source).resolve()), "target": str(Path(target).resolve()), **extra}
    return atomic_write(run / RUN_FILE, json.dumps(info, indent=2).encode())


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


@contextmanager
def appending_jsonl(path: Path) -> Iterator[Callable[[dict], None]]:
    """An append(record) for a JSON-lines file (log.jsonl, metrics.jsonl), one whole line per write: a line
    the disk has no room for is cut off again, so the file never ends in a torn line, and the failure is a
    WriteFailed naming the file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        raise write_fault(e, path) or e from None

    def append(record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            rest = memoryview(line)
            while rest:
                rest = rest[os.write(fd, rest):]
        except OSError as e:
            with suppress(OSError):
                os.ftruncate(fd, end)
            raise write_fault(e, path, expected=len(line)) or e from None
        kill_point(f"append:{Path(path).name}")

    try:
        yield append
    finally:
        os.close(fd)


def append_jsonl(path: Path, record: dict) -> None:
    with appending_jsonl(path) as append:
        append(record)


def truncate_jsonl(path: Path, last_step: int) -> list[dict]:
    """On resume: drop the records past `last_step` (the process that died wrote them) and a torn last
    line, rewriting the file atomically, so the log reads as one run. Returns the records kept."""
    if not path.exists():
        return []
    kept = [r for r in read_jsonl(path) if r.get("step", 0) <= last_step]
    atomic_write(path, "".join(json.dumps(r) + "\n" for r in kept).encode())
    return kept


# ---------------------------------------------------------------------------------------------
# Images: the training pair and the previews
# ---------------------------------------------------------------------------------------------

def save_training_pair(run: Path, source: Tensor, target: Tensor) -> None:
    """Keep the training pair inside the run folder, so its report and `sincut eval` need nothing else."""
    save_image(source, run / SOURCE_IMAGE)
    save_image(target, run / TARGET_IMAGE)


def preview_path(run: Path, step: int) -> Path:
    return run / PREVIEWS / f"step_{step:07d}.png"


def list_previews(run: Path) -> list[tuple[int, Path]]:
    """(step, file) of each preview, oldest first."""
    folder = run / PREVIEWS
    found = folder.iterdir() if folder.is_dir() else []
    return sorted((int(m.group(1)), p) for p in found if (m := _STEP_PREVIEW.match(p.name)))


def write_preview(path: Path, source: Tensor, translated: Tensor, target: Tensor) -> Path:
    sheet = side_by_side([source[0], translated[0], target[0]], PREVIEW_HEIGHT)
    return save_image(sheet, path)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / CHECKPOINTS


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoint files of a run, oldest first (temp files never match the pattern)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _STEP_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def checkpoint_step(path: Path) -> int:
    """The step in a `step_*.pt` file's name (without loading it)."""
    match = _STEP_FILE.match(path.name)
    if match is None:
        raise ValueError(f"{path}: not a step_*.pt checkpoint name")
    return int(match.group(1))


def best_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    best = checkpoint_dir(run_dir) / BEST_FILE
    return best if best.is_file() else None


def _payload(step: int, state: dict[str, Any]) -> dict[str, Any]:
    return {"format": FORMAT_VERSION, "sincut_version": __version__, "step": step, **state}


def _tensor_bytes(value: Any) -> int:
    """The bytes of every tensor in a checkpoint's payload: about the size of its file."""
    if isinstance(value, Tensor):
        return value.numel() * value.element_size()
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return sum(_tensor_bytes(v) for v in items)


def save_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Write `step_<step>.pt` atomically, then delete all but the newest `keep` checkpoints (only after the
    new one is complete: a full disk leaves the older ones as they were and raises WriteFailed)."""
    payload = _payload(step, state)
    path = checkpoint_dir(run_dir) / f"step_{step:07d}.pt"
    atomic_write(path, lambda f: torch.save(payload, f), _tensor_bytes(payload))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def save_best_checkpoint(run_dir: str | os.PathLike, step: int, state: dict[str, Any], quality: dict) -> Path:
    """Write (atomically, replacing the previous one) `best.pt` with the figures that made it best."""
    payload = {**_payload(step, state), "quality": quality}
    return atomic_write(checkpoint_dir(run_dir) / BEST_FILE, lambda f: torch.save(payload, f), _tensor_bytes(payload))


def remove_partial_files(run_dir: str | os.PathLike) -> int:
    """Delete temp files a killed process left behind (they never carry a final name)."""
    removed = 0
    for tmp in Path(run_dir).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def resolve_checkpoint(model: str | os.PathLike, which: str = "auto") -> Path:
    """A checkpoint file, or a run directory's `best.pt` (auto, when it exists; best) or latest one."""
    p = Path(model)
    if not p.exists():
        raise UserError(f"{p}: no such run directory or checkpoint; pass the --out folder of `sincut train`")
    if p.is_file():
        return p
    best = best_checkpoint(p)
    if which in ("auto", "best") and best is not None:
        return best
    if which == "best":
        raise UserError(f"{p}: this run has no {checkpoint_dir(p) / BEST_FILE} (no evaluation qualified); "
                        "use --checkpoint latest")
    found = list_checkpoints(p)
    if not found:
        raise UserError(f"{p}: this folder holds no checkpoints (expected {checkpoint_dir(p)}/step_*.pt); "
                        "train a model first with `sincut train`")
    return found[-1]


class UnreadableCheckpoint(UserError):
    """A weights file that is empty, truncated or corrupt: what a crash of the file system or an interrupted
    copy leaves (a refused or foreign file is a plain UserError). `reason` is the message without the path."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


def load_weights_file(path: Path, empty: str, holder: str, unreadable: str,
                      map_location: str | torch.device = "cpu") -> Any:
    """torch.load with weights_only=True (no code runs from the file); an empty, refused or unreadable file
    is a one-line UserError naming it (UnreadableCheckpoint when empty or damaged): `empty` and `unreadable`
    finish its sentence, `holder` names what never holds pickled objects. The one safe load for sincut's
    checkpoints and the paper's weights."""
    if path.stat().st_size == 0:
        raise UnreadableCheckpoint(path, empty)
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise UserError(f"{path}: refused to load: the file holds objects {holder} never has "
                        f"({first[:160]})") from None
    except PermissionError as e:  # not damaged: never set aside
        raise UserError(f"{path}: cannot be read ({e.strerror}); make it readable") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise UnreadableCheckpoint(path, unreadable.format(str(e).splitlines()[0][:160])) from None


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


# ---------------------------------------------------------------------------------------------
# What survives a fault: the newest readable checkpoint, and the way on after a write failed
# ---------------------------------------------------------------------------------------------

def _aside(path: Path) -> Path:
    """A free name beside `path` for a damaged file: NAME.damaged (NAME.damaged-2, ... when taken); never a
    step_*.pt name, so it is neither loaded, pruned nor removed as a temp file."""
    candidates = (path.with_name(f"{path.name}.damaged{'' if n == 1 else f'-{n}'}") for n in range(1, 10_000))
    return next(p for p in candidates if not p.exists())


def load_newest_readable(run: Path, note: Callable[[str], None],
                         set_aside: bool = True) -> tuple[Path | None, dict | None]:
    """The newest checkpoint of `run` that loads, and its state; (None, None) when the run has none (killed
    before its first). Newer ones that are damaged (empty, truncated, corrupt) are renamed aside for
    inspection (by one process: `set_aside`), each with a `note`; when none loads, nothing is renamed and
    TrainingFailed says so."""
    damaged: list[tuple[Path, UnreadableCheckpoint]] = []
    for path in reversed(list_checkpoints(run)):
        try:
            state = load_checkpoint(path)
        except UnreadableCheckpoint as e:
            damaged.append((path, e))
            continue
        except FileNotFoundError:  # another process set it aside
            continue
        for bad, error in damaged if set_aside else []:
            aside = _aside(bad)
            bad.rename(aside)
            note(f"{bad}: {error.reason}; renamed to {aside.name} for inspection; resuming from {path.name}")
        return path, state
    if damaged:
        names = ", ".join(path.name for path, _ in damaged)
        first = damaged[0][1].reason.split(". ")[0]  # torch's messages run on
        first += ")" * (first.count("(") - first.count(")"))
        raise TrainingFailed(f"{run}: no checkpoint of this run is readable ({names}; the newest: {first}); nothing "
                             f"was renamed; copy a good step_*.pt into {checkpoint_dir(run)}, or start again with "
                             "`sincut train`")
    return None, None


def final_outputs_written(run: Path) -> bool:
    """result.png and the report were written after the newest checkpoint: the run's end completed."""
    found = list_checkpoints(run)
    outputs = [run / RESULT_IMAGE, run / REPORT_HTML]
    if not found or not all(p.is_file() for p in outputs):
        return False
    return min(p.stat().st_mtime_ns for p in outputs) >= found[-1].stat().st_mtime_ns


def _resume_advice(run: Path, remedy: str) -> str:
    """What a write fault left of a run and how to go on, for the end of its one line."""
    if not is_run_dir(run):
        return f"nothing to resume yet; {remedy}, then run the same command again"
    found = list_checkpoints(run)
    if not found:
        return f"no checkpoint yet; {remedy}, then run `sincut resume {run}` (it starts again from step 0)"
    with suppress(UserError, KeyError, TypeError):
        steps = read_json(run / CONFIG_FILE)["steps"]
        if steps is not None and checkpoint_step(found[-1]) >= steps:
            return (f"training finished and its last checkpoint {found[-1]} is intact; {remedy}, then "
                    f"`sincut resume {run}` writes the final images and report")
    return f"the newest checkpoint {found[-1]} is intact; {remedy}, then run `sincut resume {run}`"


@contextmanager
def write_faults_say_how_to_resume(run: str | os.PathLike) -> Iterator[None]:
    """A write fault while training `run` (a WriteFailed, or a bare OSError of the machine: no space,
    read-only, no permission) becomes one WriteFailed line: the path, what it needed, what was kept, and
    `sincut resume RUN` once the fault is fixed."""
    run = Path(run)
    try:
        yield
    except WriteFailed as e:
        raise e.retold(_resume_advice(run, e.remedy)) from None
    except OSError as e:
        fault = write_fault(e, e.filename or run)
        if fault is None:
            raise
        raise fault.retold(_resume_advice(run, fault.remedy)) from None
