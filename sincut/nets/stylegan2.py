"""The paper's single-image networks: a StyleGAN2-style residual encoder-decoder G and residual D.

Widths come from the StyleGAN2 channel table indexed by resolution, scaled by ngf/ndf exactly as the
paper's code does, so the defaults (ngf=10, ndf=8, 64 px crops) give the paper's parameter counts.
No normalisation layers: the networks are fully convolutional up to D's final linear layers.
"""

from __future__ import annotations

import math

import kornia.filters
import torch
from torch import Tensor, nn

from .colour import KINDS as COLOUR_KINDS
from .colour import make_colour_transfer
from .encoder import EncoderFeatures
from .layers import ConvLayer, EqualLinear, ResBlock, UpsampleConv


def generator_widths(ngf: int) -> dict[int, int]:
    m = ngf / 32
    table = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {res: (min(512, round(base * m)) if res <= 32 else round(base * m)) for res, base in table.items()}


def discriminator_widths(ndf: int) -> dict[int, int]:
    m = ndf / 64
    table = {4: 4096, 8: 2048, 16: 1024, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    return {res: (min(384, int(base * m)) if res <= 32 else int(base * m)) for res, base in table.items()}


def _table_resolution(crop_size: int) -> int:
    return 2 ** int(round(math.log2(crop_size)))


class Generator(EncoderFeatures, nn.Module):
    """Encoder (identity, 1x1 stem, downsampling res blocks, res blocks) then the mirrored decoder.

    `encoder[i]` is PatchNCE layer i: layer 0 is the input itself, so NCE layers index this list.
    The output has no tanh, as in the paper's model; clamp to [-1, 1] only when saving images.
    """

    def __init__(self, ngf: int = 10, crop_size: int = 64, n_blocks: int = 6, n_downsampling: int = 1,
                 residual: bool = False, guide_radius: int = 0, colour_init: str = "none",
                 detail_sigma: float = 0.0, linear_change: bool = False) -> None:
        super().__init__()
        ch = generator_widths(ngf)
        res = _table_resolution(crop_size)
        enc: list[nn.Module] = [nn.Identity(), ConvLayer(3, ch[res], 1)]
        for _ in range(n_downsampling):
            enc.append(ResBlock(ch[res], ch[res // 2], downsample=True))
            res //= 2
        enc += [ResBlock(ch[res], ch[res], downsample=False) for _ in range(n_blocks // 2)]
        self.encoder = nn.ModuleList(enc)

        self.decoder_blocks = nn.Sequential(*[ResBlock(ch[res], ch[res], downsample=False) for _ in range(n_blocks // 2)])
        ups = []
        for _ in range(n_downsampling):
            ups.append(UpsampleConv(ch[res], ch[res * 2]))
            res *= 2
        self.upsample = nn.ModuleList(ups)
        # The paper's last layer ends in a leaky ReLU (slope 0.2): as a residual G's change that passes a
        # negative change (darker, less red) at a fifth of a positive one's gain and gradient, so every
        # channel drifts brighter. linear_change drops the activation (and its bias) for an even-handed change.
        if linear_change and not residual:
            raise ValueError("linear_change makes a residual generator's change linear (residual=True)")
        self.to_rgb = ConvLayer(ch[res], 3, 1, activate=not linear_change)
        self.stride = 2**n_downsampling
        # Residual output (the `quick` recipe): G returns input + change, and the change starts at exactly
        # zero, so training begins from the photo itself instead of a blurred, grey copy of it.
        self.residual = residual
        if residual:
            nn.init.zeros_(self.to_rgb.weight)
        if guide_radius and not residual:
            raise ValueError("guide_radius filters the change of a residual generator (residual=True)")
        self.guide_radius = guide_radius
        # The guided filter's luminance weights on G's device (not saved): a step copies nothing from the host.
        if guide_radius:
            self.register_buffer("luma", torch.tensor(LUMA).view(1, 3, 1, 1), persistent=False)
        # --detail-sigma: the fine part of G's own change (itself minus its Gaussian blur) bypasses the
        # guided filter. A halo is a band wider than the blur, so it stays filtered; a stroke finer than
        # the blur may be drawn where the photo has none.
        if detail_sigma and not guide_radius:
            raise ValueError("detail_sigma lets part of the change bypass the guided filter: set guide_radius")
        self.detail_sigma = detail_sigma
        # --colour-init: a fitted closed-form colour transfer T (buffers only, so checkpoints, the weight
        # average, translate and export carry it). G(x) = x + change(T(x)) + T(x) - x: the encoder sees T(x),
        # so training starts from the colour transfer; with a guide radius the whole change (the transfer's
        # and G's) goes through the guided filter steered by the photo x (see forward).
        if colour_init != "none" and not residual:
            raise ValueError("colour_init starts a residual generator (residual=True) from a colour transfer")
        if colour_init != "none" and colour_init not in COLOUR_KINDS:
            raise ValueError(f"colour_init must be none or one of {', '.join(COLOUR_KINDS)}, got {colour_init!r}")
        self.colour = make_colour_transfer(colour_init) if colour_init != "none" else None
        # Pixels beyond the convolutions' reach that an output pixel depends on: the guided filter's
        # coefficients are window means of window statistics (tiles read this much more context).
        self.extra_context = max(2 * guide_radius, detail_reach(detail_sigma))
        # How far (in output pixels) a change of one input pixel reaches: each res block's two 3x3 convs
        # reach 2 px at 1/stride resolution, the down- and upsampling layers' convs and blurs add
        # 6 x (stride - 1), and the guided filter 2r. tests/test_translate.py checks it with an impulse for
        # several shapes; tiles read this much context around what they keep (rounded up to the stride).
        self.receptive_radius = (4 * 2 * (n_blocks // 2) * self.stride // 2 + 6 * (self.stride - 1)
                                 + self.extra_context)

    def noise_scales(self) -> list[int]:
        """Downscale factor of each upsampling layer's output (its noise map) relative to G's output."""
        n = len(self.upsample)
        return [2 ** (n - 1 - i) for i in range(n)]

    def draw_noise(self, batch: int, height: int, width: int, generator: torch.Generator | None = None,
                   device: torch.device | str = "cpu", dtype: torch.dtype | None = None) -> list[Tensor]:
        """The noise maps `forward(generator=...)` would draw for a [batch, 3, height, width] input of
        `dtype` (float32 by default), in the same order from the same generator, so passing them as
        `noise=` gives a bit-identical output (under autocast, forward draws in the autocast dtype)."""
        return [torch.randn(batch, 1, height // s, width // s, device=device, dtype=dtype, generator=generator)
                for s in self.noise_scales()]

    def forward(self, x: Tensor, layers: tuple[int, ...] = (), generator: torch.Generator | None = None,
                noise: list[Tensor] | None = None, colour_rows: int | None = None) -> tuple[Tensor, list[Tensor]]:
        """Translate `x` and return the output with the requested encoder features picked up on the way.

        `noise` (one map per upsampling layer, see `draw_noise`) replaces the per-pixel noise drawn from
        `generator`: tiled inference crops one image-wide map so every pixel gets the same noise in any tiling.
        With a colour transfer (colour_init) the features are those of T(x), G's real input; `encode`
        (PatchNCE's queries of G's outputs) does not apply T, as the outputs are already in TARGET's colours.
        `colour_rows` = n applies T to the first n images only: training's identity pass feeds TARGET
        patches, which are in TARGET's colours already (T fitted photo -> painting would over-shift them).
        """
        feats = []
        photo = x
        if self.colour is not None:
            if colour_rows is None:
                x = self.colour(x)
            elif colour_rows > 0:
                x = torch.cat([self.colour(x[:colour_rows]), x[colour_rows:]])
        image = x
        for i, layer in enumerate(self.encoder):
            x = layer(x)
            if i in layers:
                feats.append(x)
        x = self.decoder_blocks(x)
        for i, up in enumerate(self.upsample):
            x = up(x, generator, None if noise is None else noise[i])
        out = self.to_rgb(x)
        if self.guide_radius:
            own_change = out
            if self.colour is not None:
                # The colour transfer's own change joins G's before the guided filter, steered by the photo:
                # a pointwise transfer amplifies JPEG blocks and noise in flat skies (a fitted Pitie map has
                # local gains in the thousands); filtered, its change follows the photo's edges and is smooth
                # where the photo is flat.
                out, image = guided_change(photo, image - photo + out, self.guide_radius, luma=self.luma), photo
            else:
                out = guided_change(image, out, self.guide_radius, luma=self.luma)
            if self.detail_sigma:
                out = out + fine_detail(own_change, self.detail_sigma)
        return (image + out if self.residual else out), feats


GUIDE_EPS = 0.01  # the guided filter's regulariser, in squared [-1, 1] luminance units (a std of 0.1)
LUMA = (0.299, 0.587, 0.114)  # Rec. 601 weights


def guided_change(image: Tensor, change: Tensor, radius: int, eps: float = GUIDE_EPS,
                  luma: Tensor | None = None) -> Tensor:
    """G's change made edge-aware: fitted in every (2r+1)^2 window as a * luminance + b (a guided filter,
    He et al. 2010, kornia's), then a and b averaged over the windows covering each pixel. Where the
    photo is flat the change is smoothed; across a photo edge it may step with the edge but cannot
    spill over it as a band (the halo a convolution's receptive field draws along a skyline). `luma`: the
    LUMA weights as a [1, 3, 1, 1] tensor on the image's device (G's buffer), else copied from the host."""
    radius = min(radius, change.shape[-2] - 1, change.shape[-1] - 1)  # reflection needs a wider image
    weights = image.new_tensor(LUMA).view(1, 3, 1, 1) if luma is None else luma.to(image.dtype)
    guide = (image * weights).sum(1, keepdim=True)
    return kornia.filters.guided_blur(guide, change, 2 * radius + 1, eps, border_type="reflect")


def detail_reach(sigma: float) -> int:
    """Radius of the Gaussian `fine_detail` subtracts: 3 sigma, rounded up (0 when off)."""
    return math.ceil(3 * sigma) if sigma else 0


def fine_detail(change: Tensor, sigma: float) -> Tensor:
    """The part of `change` finer than a Gaussian of `sigma` px: the change minus its blur."""
    r = detail_reach(sigma)
    r = min(r, change.shape[-2] - 1, change.shape[-1] - 1)  # reflection needs a wider image
    return change - kornia.filters.gaussian_blur2d(change, (2 * r + 1, 2 * r + 1), (sigma, sigma),
                                                   border_type="reflect")


class LocalDiscriminator(nn.Module):
    """A fine-scale critic: one logit per window of about LOCAL_FIELD px instead of one per patch.

    1x1 stem, two antialiased stride-2 3x3 convs, a 3x3 conv to one channel: a map of logits at 1/4 of
    the input's resolution, each seeing a window about the size of a brush mark. The patch-level D judges
    a patch's layout and palette; this one judges the marks in every window, so a painting that is smooth
    in most windows asks for smooth paint there and one made of strokes asks for strokes."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.net = nn.Sequential(ConvLayer(3, width, 1), ConvLayer(width, 2 * width, 3, downsample=True),
                                 ConvLayer(2 * width, 4 * width, 3, downsample=True),
                                 ConvLayer(4 * width, 1, 3, activate=False))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class Discriminator(nn.Module):
    """1x1 stem, antialiased downsampling res blocks to 4x4, a 3x3 conv, two equalised linear layers;
    optionally (local=True) a LocalDiscriminator beside it as `.local`, trained by the same optimiser."""

    def __init__(self, ndf: int = 8, crop_size: int = 64, local: bool = False) -> None:
        super().__init__()
        ch = discriminator_widths(ndf)
        res = _table_resolution(crop_size)
        if res != crop_size:
            raise ValueError(f"the discriminator needs a power-of-two crop size, got {crop_size}")
        self.local = LocalDiscriminator(ch[res]) if local else None
        blocks: list[nn.Module] = [ConvLayer(3, ch[res], 1)]
        while res > 4:
            blocks.append(ResBlock(ch[res], ch[res // 2], downsample=True))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        self.final_conv = ConvLayer(ch[4], ch[4], 3)
        self.final_linear = nn.Sequential(EqualLinear(ch[4] * 4 * 4, ch[4], activate=True), EqualLinear(ch[4], 1))
        self.crop_size = crop_size

    def forward(self, x: Tensor) -> Tensor:
        out = self.final_conv(self.blocks(x))
        return self.final_linear(out.flatten(1))
