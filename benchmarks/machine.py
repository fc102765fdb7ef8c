"""What the speed benchmarks say about the machine they ran on: its name, the CPU features that decide
which kernels run (AVX2, AVX512-BF16, AMX), and its measured conv/matmul peak in fp32 and bf16, the rate
a training step could reach at best. Shared by run.py and step_profile.py so both describe a machine alike.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import time
from typing import Callable

import torch

from sincut.inference.device import bf16_is_fast

CPU_FLAGS = ("avx2", "avx512_bf16", "amx_bf16")  # fp32 SIMD, and the two ways to fast bf16 convolutions


def sync(device: torch.device) -> None:
    """Wait for queued GPU work, so perf_counter around a phase times the phase (CPUs are synchronous)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_name() -> str:
    """lscpu's model name (the same as /proc/cpuinfo's), else what Python knows."""
    try:
        listing = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in listing.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags(names: tuple[str, ...] = CPU_FLAGS) -> dict[str, bool]:
    """Which of `names` the first CPU's flags line in /proc/cpuinfo lists (all False off Linux)."""
    flags: set[str] = set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        pass
    return {name: name in flags for name in names}


def describe(device: torch.device) -> dict:
    """Device, CPU model and flags, torch version, threads, UTC date and load: the line a figure needs."""
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu": cpu_name(), "cpu_flags": cpu_flags(), "torch": torch.__version__,
        "threads": torch.get_num_threads(), "bf16_fast": bf16_is_fast(device),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_average_at_start": os.getloadavg()[0],
    }


def _best_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak_gflops(device: torch.device, quick: bool) -> dict[str, dict[str, float]]:
    """Best-of-N GFLOP/s of a large matmul and of a 3x3 convolution shaped like the nets' (channels_last),
    with fp32 and with bf16 tensors (what autocast hands the kernels): the rate a step could reach at
    best at each precision. On CUDA, fp32 is measured with TF32 on, as Trainer.build sets it for training."""
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    repeats = 3 if quick else 6
    out: dict[str, dict[str, float]] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        # CPUs without oneDNN bf16 kernels run bf16 convs in a slow reference loop: smaller shapes there
        slow = dtype == torch.bfloat16 and device.type == "cpu" and not bf16_is_fast(device)
        n = 8192 if device.type == "cuda" else (256 if slow else 1024)
        a = torch.randn(n, n, device=device, dtype=dtype)
        b = torch.randn(n, n, device=device, dtype=dtype)
        mm = _best_seconds(lambda: (a @ b, sync(device)), repeats)
        # 3x3, 128 -> 128 channels on B x 64 x 64: a mid-sized layer of both generators
        batch = 1 if slow else 16
        x = torch.randn(batch, 128, 64, 64, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(128, 128, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        conv = _best_seconds(lambda: (torch.nn.functional.conv2d(x, w, padding=1), sync(device)), repeats)
        conv_flops = 2 * batch * 64 * 64 * 128 * 128 * 9
        out[name] = {"matmul": 2 * n ** 3 / mm / 1e9, "conv3x3": conv_flops / conv / 1e9}
        if device.type == "cpu":
            out[name]["onednn_kernels"] = not slow
        if device.type == "cuda" and name == "fp32":
            out[name]["tf32"] = True
        out[name]["peak"] = max(out[name]["matmul"], out[name]["conv3x3"])
    return out


def floor_seconds(gflop_by_precision: dict[str, float], peaks: dict[str, dict[str, float]]) -> float:
    """The least time the counted work could take: each precision's GFLOPs at that precision's peak
    (a bf16 step's float32 part, R1's pass, at the fp32 peak). fp16 counts at the bf16 peak (the other
    16-bit rate); anything else at the fp32 one."""
    def peak(precision: str) -> float:
        return peaks[precision if precision in peaks else ("bf16" if precision == "fp16" else "fp32")]["peak"]
    return sum(gflop / peak(precision) for precision, gflop in gflop_by_precision.items())
