"""Timing alike in every script: warm-up calls first (one-off kernel and allocator setup), then repeats
reported as median and range (a shared CPU moves single calls by 10-20%); a command or child interpreter run
to its end, one at a time, so that its peak memory is its own."""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

import torch


def sync(device: torch.device | None) -> None:
    """Wait for queued GPU work, so perf_counter around a call times the call (CPUs are synchronous)."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclasses.dataclass
class Timings:
    """Seconds of each timed call, in order."""

    times: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def fastest(self) -> float:
        return min(self.times)

    @property
    def slowest(self) -> float:
        return max(self.times)

    @property
    def relative_range(self) -> float:
        """(slowest - fastest) / median: how far one call can be from the figure shown."""
        return (self.slowest - self.fastest) / self.median


def time_calls(call: Callable[[int], object], repeats: int, warmup: int = 1,
               device: torch.device | None = None) -> Timings:
    """`warmup` untimed calls, then `repeats` timed ones; each call gets its index (0, 1, ...: a training
    step's number) and ends with a GPU synchronize."""
    times = []
    for i in range(warmup + repeats):
        sync(device)
        start = time.perf_counter()
        call(i)
        sync(device)
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return Timings(times)


def memory_mib(field: str = "VmHWM") -> float:
    """VmHWM (peak) or VmRSS (now) of this process in MiB from /proc/self/status (Linux; NaN elsewhere).
    VmHWM starts afresh at exec, unlike ru_maxrss, which a child inherits from its parent."""
    try:
        with open("/proc/self/status", encoding="utf-8") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run_to_end(argv: Sequence[str], env: dict | None = None) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak resident GiB) of one command run to its end, output discarded. The
    peak is the child's own (ru_maxrss from wait4), so one run's never leaks into the next."""
    start = time.perf_counter()
    child = subprocess.Popen(list(argv), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    return child.returncode, time.perf_counter() - start, usage.ru_maxrss / 2**20  # ru_maxrss is in KiB


def json_from_child(argv: Sequence[str], what: str, cwd: Path | None = None) -> dict:
    """Run a measurement in a fresh interpreter (its memory and its one-off costs its own) and read the JSON
    object it prints last; stop the benchmark with the child's error when it fails."""
    done = subprocess.run(list(argv), capture_output=True, text=True, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"{what}: failed\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
