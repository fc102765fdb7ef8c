"""A disk that fills up (or refuses) on cue, for the write-fault tests (and light evaluations for the many
short runs of those tests and of the kill test): sincut's writes of one file fail
as a real disk fails them, with no root and no small file system needed.

`FailingWrites(monkeypatch, "step_*.pt")` makes the next write of a file whose name matches the pattern
get `room` bytes through and then raise OSError(ENOSPC) (or the errno given), inside the write call itself:
torch.save turns that into its RuntimeError as it does on a full disk, Pillow into its own error, and a
JSON-lines append is left torn. It hooks the `os` name of the two modules that write files (data/images.py:
atomic_write; run_folder.py: the JSON-lines appends), so nothing else in the process is touched.
"""

from __future__ import annotations

import errno
import fnmatch
import io
import os
from pathlib import Path

import pytest

import sincut.data.images as images
import sincut.run_folder as run_folder
from sincut.evaluation.quality import Quality


def _name_of_fd(fd: int) -> str:
    """The file name behind `fd`; a temp file of atomic_write (.NAME.XXXXXXXX.tmp) answers NAME."""
    name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
    if name.startswith(".") and name.endswith(".tmp"):
        name = name[1:].rsplit(".", 2)[0]
    return name


class _FillingFile:
    """A file object whose writes stop with the fault once `room` bytes went through."""

    def __init__(self, f: io.BufferedWriter, writes: "FailingWrites") -> None:
        self._f, self._writes = f, writes

    def write(self, data) -> int:
        room = self._writes.take_room(len(data))
        if room < len(data):
            self._f.write(bytes(memoryview(data)[:room]))
            self._f.flush()
            raise self._writes.error()
        return self._f.write(data)

    def fileno(self) -> int:  # Pillow would encode straight into the descriptor; make it use write()
        raise io.UnsupportedOperation("fileno")

    def __getattr__(self, name: str):
        return getattr(self._f, name)

    def __enter__(self) -> "_FillingFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self._f.close()


class _Os:
    """The os module, except that writes to the chosen file fail."""

    def __init__(self, writes: "FailingWrites") -> None:
        self._writes = writes

    def __getattr__(self, name: str):
        return getattr(os, name)

    def fdopen(self, fd: int, *args, **kwargs):
        f = os.fdopen(fd, *args, **kwargs)
        return _FillingFile(f, self._writes) if self._writes.hits(_name_of_fd(fd), "file") else f

    def write(self, fd: int, data) -> int:
        if not self._writes.hits(_name_of_fd(fd), "append"):
            return os.write(fd, data)
        room = self._writes.take_room(len(data))
        if room:
            os.write(fd, bytes(memoryview(data)[:room]))
        raise self._writes.error()


class FailingWrites:
    """Writes of files named like `pattern` fail with `code` after `room` bytes, `times` times (then the
    space is 'freed'); `kind` "append" or "file" picks only JSON-lines appends or only whole-file writes
    (a resume rewrites metrics.jsonl whole before it appends to it). `failed` lists the names that failed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, pattern: str, code: int = errno.ENOSPC, room: int = 64,
                 times: int = 1, kind: str | None = None) -> None:
        if not os.path.isdir("/proc/self/fd"):
            pytest.skip("the injected write faults find a descriptor's file through /proc/self/fd (Linux)")
        self.pattern, self.code, self.room, self.times, self.kind = pattern, code, room, times, kind
        self.failed: list[str] = []
        self._room_left = room
        monkeypatch.setattr(images, "os", _Os(self))
        monkeypatch.setattr(run_folder, "os", _Os(self))

    def hits(self, name: str, kind: str) -> bool:
        if len(self.failed) < self.times and self.kind in (None, kind) and fnmatch.fnmatch(name, self.pattern):
            self._name = name
            return True
        return False

    def take_room(self, wanted: int) -> int:
        room = min(wanted, self._room_left)
        self._room_left -= room
        return room

    def error(self) -> OSError:
        self.failed.append(self._name)
        self._room_left = self.room
        return OSError(self.code, os.strerror(self.code))


class _SameFigures:
    """Stands in for the run's StyleReference: the same figures at every evaluation, so each is the best."""

    def __init__(self, target, size) -> None:
        pass

    def evaluate(self, output, source) -> Quality:
        return Quality((0.5, 0.5), 0.9, 0.5, texture_distance=0.1)


def light_evaluations(m: pytest.MonkeyPatch) -> None:
    """These tests are about files, not figures: evaluations with fixed figures, no Inception network, and
    small previews, so each of the many short runs costs little more than its steps."""
    m.setattr("sincut.evaluation.monitor.load_inception", lambda *a: None)
    m.setattr("sincut.evaluation.monitor.StyleReference", _SameFigures)
    m.setattr("sincut.run_folder.PREVIEW_HEIGHT", 48)
