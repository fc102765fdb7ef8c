"""The work a step does and the least time it could take: FLOPs counted by the precision each kernel ran in,
the machine's measured conv/matmul peak in fp32 and bf16, and from them the floor. One counter for ours and
the paper's code (paper_probe.py), so their FLOPs compare."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .timing import time_calls

PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64"}


class CountFlops(TorchDispatchMode):
    """FLOPs of every aten op that torch.utils.flop_counter knows (convolutions, matmuls, their backward), by
    op and by precision. FlopCounterMode itself also tracks modules with autograd hooks, which torch 2.14
    refuses under R1's torch.autograd.grad ("A leaf node was passed to _will_engine_execute_node"); a bare
    dispatch mode sees the same ops without touching autograd. It sits below autocast, so it sees the dtype
    each kernel really ran in: under bf16 autocast R1's float32 pass of D counts as fp32, the rest as bf16."""

    def __init__(self) -> None:
        super().__init__()
        self.by_op: dict[str, int] = {}
        self.by_precision: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            name = str(func._overloadpacket)
            flops = count(*args, **kwargs, out_val=out)
            self.by_op[name] = self.by_op.get(name, 0) + flops
            dtype = next((a.dtype for a in args if isinstance(a, torch.Tensor)), None)
            precision = PRECISION_NAMES.get(dtype, str(dtype))
            self.by_precision[precision] = self.by_precision.get(precision, 0) + flops
        return out

    @property
    def total(self) -> int:
        return sum(self.by_op.values())


def peak_gflops(device: torch.device, quick: bool) -> dict[str, dict[str, float]]:
    """Best-of-N GFLOP/s of a large matmul and of a 3x3 convolution shaped like the nets' (channels_last), with
    fp32 and with bf16 tensors (what autocast hands the kernels): the rate a step could reach at best at each
    precision. On CUDA, fp32 is measured with TF32 on, as Trainer.build sets it for training."""
    from sincut.inference.device import bf16_is_fast

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
        matmul = time_calls(lambda _: a @ b, repeats, device=device).fastest
        # 3x3, 128 -> 128 channels on B x 64 x 64: a mid-sized layer of both generators
        batch = 1 if slow else 16
        x = torch.randn(batch, 128, 64, 64, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        w = torch.randn(128, 128, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
        conv = time_calls(lambda _: torch.nn.functional.conv2d(x, w, padding=1), repeats, device=device).fastest
        conv_flops = 2 * batch * 64 * 64 * 128 * 128 * 9
        out[name] = {"matmul": 2 * n ** 3 / matmul / 1e9, "conv3x3": conv_flops / conv / 1e9}
        if device.type == "cpu":
            out[name]["onednn_kernels"] = not slow
        if device.type == "cuda" and name == "fp32":
            out[name]["tf32"] = True
        out[name]["peak"] = max(out[name]["matmul"], out[name]["conv3x3"])
    return out


def floor_seconds(gflop_by_precision: dict[str, float], peaks: dict[str, dict[str, float]]) -> float:
    """The least time the counted work could take: each precision's GFLOPs at that precision's peak (a bf16
    step's float32 part, R1's pass, at the fp32 peak). fp16 counts at the bf16 peak (the other 16-bit rate);
    anything else at the fp32 one."""
    def peak(precision: str) -> float:
        return peaks[precision if precision in peaks else ("bf16" if precision == "fp16" else "fp32")]["peak"]
    return sum(gflop / peak(precision) for precision, gflop in gflop_by_precision.items())


def add_floors(runs: dict[str, dict], peaks: dict[str, dict[str, float]]) -> None:
    """Each run's floor (its FLOPs at the peak of the precision each ran in) and floor / step."""
    for run in runs.values():
        run["floor_s"] = floor_seconds(run["gflop_by_precision"], peaks)
        run["fraction_of_floor"] = run["floor_s"] / run["total"]
