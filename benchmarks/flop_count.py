"""FLOPs of the aten ops torch.utils.flop_counter knows (convolutions, matmuls and their backward),
counted by a bare dispatch mode, by op and by the precision they ran in. Used for both sides of
benchmarks/run.py (ours, and the paper's step through paper_probe.py) and by step_profile.py."""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

PRECISION_NAMES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16", torch.float64: "fp64"}


class CountFlops(TorchDispatchMode):
    """FLOPs of every aten op that torch.utils.flop_counter knows (convolutions, matmuls, their
    backward), by op and by precision. FlopCounterMode itself also tracks modules with autograd hooks,
    which torch 2.14 refuses under R1's torch.autograd.grad ("A leaf node was passed to
    _will_engine_execute_node"); a bare dispatch mode sees the same ops without touching autograd.
    It sits below autocast, so it sees the dtype each kernel really ran in: under bf16 autocast R1's
    float32 pass of D counts as fp32, the rest as bf16 (floors weigh each at its own peak)."""

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
