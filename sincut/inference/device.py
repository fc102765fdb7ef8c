"""Which device inference (and training) runs on, and whether this CPU has fast bfloat16 kernels."""

from __future__ import annotations

import torch

from ..errors import UserError


def pick_device(name: str = "auto") -> torch.device:
    """'auto' takes CUDA, then Apple's MPS, then the CPU; a named device must exist."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: no CUDA GPU is visible to PyTorch; use --device cpu or auto")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps: Apple's MPS backend is not available here; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"--device {name}: not a device name; use auto, cpu, cuda, cuda:N or mps") from None


def cpu_has_bf16_kernels() -> bool:
    """Whether oneDNN has bfloat16 convolutions on this CPU (AVX512-BF16 or AMX). Without them PyTorch
    runs bf16 convolutions in a reference loop (aten::_slow_conv2d_forward), many times slower than fp32."""
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bfloat16 autocast is the fast path here: a CPU whose oneDNN has bfloat16 convolutions (AMX
    or AVX512-BF16: quick 1.33x, the paper's recipe 2.53x faster on a 2-core Xeon with AMX). Not on GPUs:
    on an H200 the paper's recipe, launch-bound, took 259 ms a step in bf16 against 245 ms in fp32
    (docs/performance.md), so `--precision bf16` there is a memory saving to ask for. Nor on MPS."""
    return device.type == "cpu" and cpu_has_bf16_kernels()


# Recipes whose bf16 training is shown to match fp32: the golden step's terms within a few percent and the
# pictures of a fixed step count within the fp32 seeds' spread (docs/performance.md). The paper's recipe
# passes the first test but its pictures are unmeasured; cut's and fastcut's adversarial gradients move by
# 13-34% in bf16 (benchmarks/bf16_numerics.py): they stay fp32 under 'auto' until pictures say otherwise.
BF16_PRESETS = ("quick",)


def resolve_precision(requested: str, device: torch.device, preset: str | None = None) -> str:
    """The precision a run uses: 'auto' becomes bf16 where bf16_is_fast(device) and the recipe (`preset`,
    a model's training recipe for translation; None for no recipe) is one of BF16_PRESETS, else fp32.
    An explicit fp32, bf16 or fp16 is kept as asked (the device checks refuse what cannot run)."""
    if requested != "auto":
        return requested
    shown = preset is None or preset in BF16_PRESETS
    return "bf16" if shown and bf16_is_fast(device) else "fp32"
