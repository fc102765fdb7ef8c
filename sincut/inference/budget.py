"""How much memory one forward pass of a generator takes, and so how large a tile (and how many tiles
per pass) a memory budget allows.

The cost of a pass is measured, not guessed from layer widths: `measure_cost` runs the generator at two
small sizes under a dispatch mode that adds up the bytes of every live tensor (inputs, activations,
temporaries inside composite ops such as the guided filter) and takes the peak. A fully convolutional
net's peak is affine in the pixel count, so the two peaks give a fixed part and a per-pixel part, and
any tile's cost follows. tests/test_budget.py checks the estimate against a real peak RSS.
"""

from __future__ import annotations

import math
import os
import re
import weakref
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from ..errors import UserError
from .tiles import min_tile

MiB = 2**20
GiB = 2**30
# The CPU default: half the memory the kernel says is available, at most this much for the forward
# passes. The image-wide buffers of a tiled translation (input, float32 result, noise: about 22 bytes per
# pixel, 0.5 GiB at 24 MP) and torch itself (about 0.35 GiB) come on top, so a 24 MP photo stays under
# 3 GiB peak RSS.
CPU_BUDGET_CAP = 3 * GiB // 2
# On a GPU: this share of the free memory (cuDNN's workspaces and the caching allocator's rounding are
# not in the measured cost).
GPU_FREE_SHARE = 0.5
# onnxruntime plans its own buffers (an arena, fused kernels); its peak RSS per pixel against torch's
# measured tensor bytes: 1598 MiB against 1138 MiB for the default generator at 1024x1024 (1.40x).
ONNX_COST_FACTOR = 1.45
# The guided filter (--guide-radius) works on 1- and 3-channel maps: tensors small enough for glibc to
# serve from its heap instead of mmap, where freed blocks stay resident, so the process's peak RSS is
# above the live tensor bytes: 341 against 240 bytes per pixel for the quick G at 1024x1024, for radii
# 4 to 16 alike (the plain G's large maps are mmapped, and its RSS matches the count to 2%).
GUIDED_RSS_FACTOR = 1.5
PROBE_SIDES = (96, 192)  # multiples of every generator's stride, wider than a guided filter's window

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgGtT]i?[bB]?|[bB])?\s*$")
_UNITS = {"b": 1, "k": 2**10, "m": MiB, "g": GiB, "t": 2**40}


def parse_memory(text: str) -> int:
    """'2GiB', '1500MiB', '1.5G', '800M' -> bytes; a plain number is MiB. Binary units throughout
    (a GB is read as a GiB: the difference is under 7%, on the safe side for a budget)."""
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a memory size; write e.g. 2GiB, 1500MiB or 1500 (MiB)")
    number, unit = float(match.group(1)), (match.group(2) or "m")[0].lower()
    return int(number * _UNITS[unit])


def format_memory(size: float) -> str:
    return f"{size / GiB:.2f} GiB" if size >= GiB else f"{math.ceil(size / MiB)} MiB"


def available_memory() -> int | None:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages; None where neither is known."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_budget(device: torch.device) -> int:
    """The memory the forward passes may take when --max-memory is not given (see the constants)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * GPU_FREE_SHARE)
    available = available_memory()
    return CPU_BUDGET_CAP if available is None else min(available // 2, CPU_BUDGET_CAP)


class LiveTensorBytes(TorchDispatchMode):
    """Peak of the bytes held by live tensors created under the mode (storages counted once, however
    many views share them). Tensors made before entering are added with `hold`."""

    def __init__(self) -> None:
        super().__init__()
        self.owners: dict[int, list[int]] = {}  # storage address -> [live tensors on it, bytes]
        self.live = 0
        self.peak = 0

    def hold(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        address = storage.data_ptr()
        if address == 0:
            return
        entry = self.owners.get(address)
        if entry is None:
            self.owners[address] = [1, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        else:
            entry[0] += 1
        weakref.finalize(tensor, self._release, address)

    def _release(self, address: int) -> None:
        entry = self.owners.get(address)
        if entry is None:
            return
        entry[0] -= 1
        if entry[0] == 0:
            self.live -= entry[1]
            del self.owners[address]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.hold(leaf)
        return out


@dataclass(frozen=True)
class PassCost:
    """Bytes of one forward pass over `pixels` input pixels: fixed + per_pixel * pixels (any batch)."""

    fixed: float
    per_pixel: float

    def bytes(self, pixels: int) -> float:
        return self.fixed + self.per_pixel * pixels

    def pixels(self, budget: float) -> int:
        """The most input pixels one pass may take within `budget` bytes."""
        return max(0, int((budget - self.fixed) // self.per_pixel))

    def scaled(self, factor: float) -> "PassCost":
        return PassCost(self.fixed * factor, self.per_pixel * factor)


def _peak_bytes(G: nn.Module, side: int) -> int:
    param = next(G.parameters())
    x = torch.zeros(1, 3, side, side, device=param.device).contiguous(memory_format=torch.channels_last)
    noise = G.draw_noise(1, side, side, device=param.device)
    counter = LiveTensorBytes()
    with torch.inference_mode(), counter:
        for t in (x, *noise):
            counter.hold(t)
        out, _ = G(x, noise=noise)
        del out
    return counter.peak


def measure_cost(G: nn.Module) -> PassCost:
    """G's float32 inference cost, from its peaks at two sizes (cached on G: it depends only on the
    architecture). Half precision takes less; the float32 figure is the safe side."""
    cached = getattr(G, "_sincut_pass_cost", None)
    if cached is not None:
        return cached
    small, large = PROBE_SIDES
    peaks = [_peak_bytes(G, side) for side in (small, large)]
    per_pixel = (peaks[1] - peaks[0]) / (large**2 - small**2)
    cost = PassCost(fixed=max(0.0, peaks[0] - per_pixel * small**2), per_pixel=per_pixel)
    if getattr(G, "guide_radius", 0):
        cost = cost.scaled(GUIDED_RSS_FACTOR)
    object.__setattr__(G, "_sincut_pass_cost", cost)
    return cost


def tile_for_cost(cost: PassCost, budget: float, stride: int, context: int) -> int:
    """The largest square tile (a multiple of `stride`) whose pass fits `budget`; ValueError naming
    the smallest budget when not even the smallest tile fits."""
    smallest = min_tile(context, stride)
    side = math.isqrt(cost.pixels(budget)) // stride * stride
    if side < smallest:
        need = cost.bytes(smallest * smallest)
        raise ValueError(f"too small for this model: its smallest tile ({smallest} px) needs {format_memory(need)}")
    return side


def tile_for_budget(G: nn.Module, budget: float, context: int) -> int:
    """The largest tile of G within `budget` bytes of forward-pass memory (see tile_for_cost)."""
    return tile_for_cost(measure_cost(G), budget, G.stride, context)


def batch_for_budget(cost: PassCost, budget: float, pixels_each: int, count: int) -> int:
    """How many tiles of `pixels_each` input pixels one pass may take within `budget` (1 to count)."""
    return max(1, min(count, cost.pixels(budget) // max(1, pixels_each)))


def budget_error(budget: float, reason: str, default: bool = False) -> UserError:
    """The one-line error of a budget that cannot hold the smallest tile, naming the minimum."""
    which = " (the default: half the available memory)" if default else ""
    return UserError(f"--max-memory {format_memory(budget)}{which}: {reason}; give at least that, or free memory")
