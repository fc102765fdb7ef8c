"""The plain network inside the wrappers training puts around it (DistributedDataParallel, torch.compile).

Here beside the networks, not with training/distributed.py which does the wrapping, so that the objective
and anything else below training can reach a network's own parameters without importing training.
"""

from __future__ import annotations

from torch import nn


def without_ddp(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (still compiled, if it was)."""
    return getattr(module, "module", module)


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside a DistributedDataParallel and/or torch.compile wrapper."""
    module = without_ddp(module)
    return getattr(module, "_orig_mod", module)
