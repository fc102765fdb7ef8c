"""The paper's dataset networks (presets `cut` and `fastcut`): a ResNet G and a 70x70 PatchGAN D.

Both use instance normalisation and antialiased resampling (blur then subsample, upsample then blur),
and are initialised as the paper's code does: Xavier-normal weights with gain 0.02, zero biases.
Layer indices of `Generator.encoder` follow the paper's sequential model, so PatchNCE layers
0, 4, 8, 12, 16 mean what they mean there (0 is the input after its 3-pixel reflection pad).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoder import EncoderFeatures


def _binomial(taps: list[float]) -> Tensor:
    k = torch.tensor(taps, dtype=torch.float32)
    k2 = torch.outer(k, k)
    return k2 / k2.sum()


class BlurDownsample(nn.Module):
    """Reflect-pad 1, [1, 2, 1] binomial blur, keep every second pixel (one depthwise conv)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", _binomial([1, 2, 1]).expand(channels, 1, 3, 3).contiguous(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.kernel.to(x.dtype), stride=2,
                        groups=x.shape[1])


class BlurUpsample(nn.Module):
    """2x upsampling by a transposed depthwise conv with the [1, 3, 3, 1] binomial (x4 gain),
    edges replicated, output exactly twice the input size."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("kernel", (_binomial([1, 3, 3, 1]) * 4).expand(channels, 1, 4, 4).contiguous(),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        out = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.kernel.to(x.dtype), stride=2,
                                 padding=2, groups=x.shape[1])
        return out[:, :, 1:-1, 1:-1]


class ResnetBlock(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim), nn.ReLU(True),
            nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3), nn.InstanceNorm2d(dim),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.xavier_normal_(m.weight, gain=gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class ResnetGenerator(EncoderFeatures, nn.Module):
    """7x7 stem, two antialiased downsamplings, n_blocks res blocks, two antialiased upsamplings,
    7x7 conv to RGB and tanh. Same interface as the StyleGAN2 generator (forward/encode/stride)."""

    channels_last_on_cpu = False  # instance norm, reflection pads: NCHW is faster on CPUs (nets.memory_format)

    def __init__(self, ngf: int = 64, n_blocks: int = 9, init_gain: float = 0.02) -> None:
        super().__init__()
        enc: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
        ch = ngf
        for _ in range(2):
            enc += [nn.Conv2d(ch, ch * 2, 3, padding=1), nn.InstanceNorm2d(ch * 2), nn.ReLU(True), BlurDownsample(ch * 2)]
            ch *= 2
        enc += [ResnetBlock(ch) for _ in range(n_blocks)]
        self.encoder = nn.ModuleList(enc)
        dec: list[nn.Module] = []
        for _ in range(2):
            dec += [BlurUpsample(ch), nn.Conv2d(ch, ch // 2, 3, padding=1), nn.InstanceNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        dec += [nn.ReflectionPad2d(3), nn.Conv2d(ch, 3, 7), nn.Tanh()]
        self.decoder = nn.Sequential(*dec)
        self.stride = 4
        init_weights(self, init_gain)

    # Instance norm takes its statistics from the whole image, so tiles would not agree with it:
    # inference runs whole images through this generator.
    tileable = False

    def noise_scales(self) -> list[int]:
        return []  # no noise inputs

    def draw_noise(self, batch: int, height: int, width: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> list[Tensor]:
        return []

    def forward(self, x: Tensor, layers: tuple[int, ...] = (), generator: torch.Generator | None = None,
                noise: list[Tensor] | None = None) -> tuple[Tensor, list[Tensor]]:
        """`generator` and `noise` are accepted for interface parity; this network uses no noise."""
        feats = []
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in layers:
                feats.append(x)
        return self.decoder(x), feats


class PatchGANDiscriminator(nn.Module):
    """70x70 PatchGAN: 4x4 convs, three antialiased stride-2 stages, instance norm, LeakyReLU(0.2);
    one logit per overlapping 70x70 patch."""

    channels_last_on_cpu = False  # instance norm: NCHW is faster on CPUs (see nets.memory_format)

    def __init__(self, ndf: int = 64, n_layers: int = 3, init_gain: float = 0.02) -> None:
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(3, ndf, 4, padding=1), nn.LeakyReLU(0.2, True), BlurDownsample(ndf)]
        mult = 1
        for n in range(1, n_layers):
            prev, mult = mult, min(2**n, 8)
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, padding=1), nn.InstanceNorm2d(ndf * mult),
                    nn.LeakyReLU(0.2, True), BlurDownsample(ndf * mult)]
        prev, mult = mult, min(2**n_layers, 8)
        seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, padding=1), nn.InstanceNorm2d(ndf * mult),
                nn.LeakyReLU(0.2, True), nn.Conv2d(ndf * mult, 1, 4, padding=1)]
        self.model = nn.Sequential(*seq)
        init_weights(self, init_gain)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)
