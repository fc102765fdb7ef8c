"""The machine a figure was measured on, described alike by every script: the CPU's model and the flags that
decide which kernels run (AVX2, AVX-512, AVX512-BF16, AMX), the GPU, torch, threads, the UTC date and the
load, so that two JSON files can be compared key by key."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time

import torch

from sincut.inference.device import bf16_is_fast

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")  # fp32 SIMD, and the two ways to fast bf16 convolutions


def cpu_name() -> str:
    """lscpu's model name (the same as /proc/cpuinfo's), else what Python knows (only x86_64 on Linux)."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    for line in _cpuinfo_lines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_flags(names: tuple[str, ...] = CPU_FLAGS) -> dict[str, bool]:
    """Which of `names` the first CPU's flags line in /proc/cpuinfo lists (all False off Linux)."""
    flags = next((set(line.split(":", 1)[1].split()) for line in _cpuinfo_lines() if line.startswith("flags")), set())
    return {name: name in flags for name in names}


def _cpuinfo_lines() -> list[str]:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return f.read().splitlines()
    except OSError:
        return []


def describe(device: torch.device | None = None) -> dict:
    """What a figure needs beside it: "device" (the GPU's name on CUDA, else the CPU's), the CPU and its
    flags, cores, GPU, torch, Python, threads, fast bf16 kernels, UTC date and the load at the start."""
    device = device or torch.device("cpu")
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {
        "device": gpu or cpu_name(), "cpu": cpu_name(), "cpu_flags": cpu_flags(), "cores": os.cpu_count(),
        "gpu": gpu, "torch": torch.__version__, "python": platform.python_version(),
        "threads": torch.get_num_threads(), "bf16_fast": bf16_is_fast(device),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg()[0],
    }


def record_end(machine: dict, started: float) -> None:
    """The load at the end and the wall seconds since `started` (perf_counter): a run whose load changed
    on the way says so in its JSON."""
    machine["load_average_at_end"] = os.getloadavg()[0]
    machine["wall_s"] = time.perf_counter() - started
