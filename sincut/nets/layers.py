"""Building blocks shared by the StyleGAN2-style networks.

Every weight uses the *equalised learning rate* of StyleGAN: parameters are drawn from N(0, 1) and
multiplied by 1/sqrt(fan_in) at run time, so Adam sees every layer at the same scale.
Resampling is antialiased with the separable [1, 3, 3, 1] binomial kernel, run as one depthwise
convolution over all channels at once (the paper's code loops a single-channel filter over every
channel of every sample, which is where most of its CPU time goes).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

BLUR_KERNEL = (1.0, 3.0, 3.0, 1.0)
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2.0)


class Blur(nn.Module):
    """Depthwise FIR low-pass filter with zero padding (pad_before, pad_after)."""

    def __init__(self, channels: int, pad: tuple[int, int], gain: float = 1.0,
                 taps: tuple[float, ...] = BLUR_KERNEL) -> None:
        super().__init__()
        k1 = torch.tensor(taps, dtype=torch.float32)
        k2 = torch.outer(k1, k1)
        k2 = k2 / k2.sum() * gain
        # The kernel is symmetric, so correlation (conv2d) equals convolution; no flip needed.
        self.register_buffer("kernel", k2.expand(channels, 1, *k2.shape).contiguous(), persistent=False)
        self.pad = pad
        self.channels = channels

    def forward(self, x: Tensor) -> Tensor:
        p0, p1 = self.pad
        if p0 == p1:  # let the convolution pad: no padded copy of the input
            return F.conv2d(x, self.kernel.to(x.dtype), padding=p0, groups=self.channels)
        return F.conv2d(F.pad(x, (p0, p1, p0, p1)), self.kernel.to(x.dtype), groups=self.channels)


class EqualLinear(nn.Module):
    def __init__(self, in_features: int, out_features: int, activate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.scale = 1.0 / math.sqrt(in_features)
        self.activate = activate

    def forward(self, x: Tensor) -> Tensor:
        if not self.activate:
            return F.linear(x, self.weight * self.scale, self.bias)
        # leaky_relu(z) * g == leaky_relu(g * z) for g > 0: the gain folds into weight and bias.
        out = F.linear(x, self.weight * (self.scale * LRELU_GAIN), self.bias * LRELU_GAIN)
        return F.leaky_relu(out, LRELU_SLOPE, inplace=True)


class ConvLayer(nn.Module):
    """Equalised conv (optionally blur + stride 2: antialiased downsampling), bias, leaky ReLU x sqrt(2).

    The paper's layer runs conv, then bias + leaky ReLU, then a x sqrt(2) gain as separate passes.
    Since leaky_relu(z) * g == leaky_relu(g * z) for g > 0, the gain (and any output gain such as a
    residual block's 1/sqrt(2)) is folded into the weight and bias, and the bias is added inside the
    convolution: one pass over the output instead of three, same function. Without an activation the
    layer has no bias, as in the paper.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, downsample: bool = False,
                 activate: bool = True, out_gain: float = 1.0) -> None:
        super().__init__()
        if downsample:
            p = (len(BLUR_KERNEL) - 2) + (kernel_size - 1)
            self.blur: nn.Module | None = Blur(in_channels, pad=((p + 1) // 2, p // 2))
            self.stride, self.padding = 2, 0
        else:
            self.blur = None
            self.stride, self.padding = 1, kernel_size // 2
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if activate else None
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        self.activate = activate
        self.gain = (LRELU_GAIN if activate else 1.0) * out_gain

    def forward(self, x: Tensor) -> Tensor:
        if self.blur is not None:
            x = self.blur(x)
        bias = self.bias * self.gain if self.bias is not None else None
        out = F.conv2d(x, self.weight * (self.scale * self.gain), bias, stride=self.stride, padding=self.padding)
        return F.leaky_relu(out, LRELU_SLOPE, inplace=True) if self.activate else out


class ResBlock(nn.Module):
    """Two 3x3 convs plus a skip (1x1 when the shape changes), summed and divided by sqrt(2).

    The 1/sqrt(2) is folded into conv2 and the 1x1 skip (see ConvLayer); an identity skip is added
    with alpha = 1/sqrt(2).
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool) -> None:
        super().__init__()
        inv_sqrt2 = 1.0 / math.sqrt(2.0)
        self.conv1 = ConvLayer(in_channels, in_channels, 3)
        self.conv2 = ConvLayer(in_channels, out_channels, 3, downsample=downsample, out_gain=inv_sqrt2)
        if downsample or in_channels != out_channels:
            self.skip: ConvLayer | None = ConvLayer(in_channels, out_channels, 1, downsample=downsample,
                                                    activate=False, out_gain=inv_sqrt2)
        else:
            self.skip = None

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(self.conv1(x))
        if self.skip is None:
            return torch.add(out, x, alpha=1.0 / math.sqrt(2.0))
        return out + self.skip(x)


class UpsampleConv(nn.Module):
    """2x upsampling 3x3 conv of the StyleGAN2 decoder with a constant style.

    The paper's layer is a modulated conv whose style is all ones, run as a per-sample grouped
    transposed conv. With a constant style, modulation is the identity and demodulation is a fixed
    per-output-channel rescale of the weight, so one ordinary transposed conv computes the same thing.
    Then a [1, 3, 3, 1] blur, per-pixel Gaussian noise scaled by a learned scalar (starts at 0),
    and bias + leaky ReLU x sqrt(2) (the gain folded in as in ConvLayer).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.scale = 1.0 / math.sqrt(in_channels * kernel_size**2)
        p = (len(BLUR_KERNEL) - 2) - (kernel_size - 1)
        self.blur = Blur(out_channels, pad=((p + 1) // 2 + 1, p // 2 + 1), gain=4.0)
        self.noise_strength = nn.Parameter(torch.zeros(1))
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def demodulated_weight(self) -> Tensor:
        w = self.weight * self.scale
        w = w * torch.rsqrt(w.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        return w.transpose(0, 1)  # conv_transpose2d wants [in, out, k, k]

    def forward(self, x: Tensor, generator: torch.Generator | None = None, noise: Tensor | None = None) -> Tensor:
        """`noise` ([B or 1, 1, 2H, 2W]) replaces the drawn noise, so tiles can share one image-wide map."""
        out = F.conv_transpose2d(x, self.demodulated_weight() * LRELU_GAIN, stride=2)
        out = self.blur(out)
        if noise is None:
            b, _, h, w = out.shape
            noise = torch.randn(b, 1, h, w, device=out.device, dtype=out.dtype, generator=generator)
        noise = noise.to(out.dtype)
        out = out.add_(noise * (self.noise_strength * LRELU_GAIN)).add_((self.bias * LRELU_GAIN).view(1, -1, 1, 1))
        return F.leaky_relu(out, LRELU_SLOPE, inplace=True)
