"""FLOPs of the aten ops torch.utils.flop_counter knows (convolutions, matmuls and their backward),
counted by a bare dispatch mode. Used for both sides of benchmarks/run.py (ours, and the paper's step
through paper_probe.py)."""

from __future__ import annotations

from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


class CountFlops(TorchDispatchMode):
    """FLOPs of every aten op that torch.utils.flop_counter knows (convolutions, matmuls, their
    backward), by op. FlopCounterMode itself also tracks modules with autograd hooks, which torch 2.14
    refuses under R1's torch.autograd.grad ("A leaf node was passed to _will_engine_execute_node");
    a bare dispatch mode sees the same ops without touching autograd."""

    def __init__(self) -> None:
        super().__init__()
        self.by_op: dict[str, int] = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            name = str(func._overloadpacket)
            self.by_op[name] = self.by_op.get(name, 0) + count(*args, **kwargs, out_val=out)
        return out

    @property
    def total(self) -> int:
        return sum(self.by_op.values())
